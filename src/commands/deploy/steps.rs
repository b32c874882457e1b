//! The named steps `deploy` runs, in order: model (and gate), bootstrap, builder, account,
//! quotas and ownership, repository, image, stack (planned, confirmed, applied), keep tag,
//! budget. Each takes the checked plan and what earlier steps produced.

use super::*;

/// The release this deploy made (its image given its slot tag), the live one it left (tagged
/// again: how an image from before slot tags gets one), or the one a dry run would make.
pub(super) async fn release_step(
    plan: &DeployPlan,
    aws: &Aws,
    outcome: Outcome,
    release: &Release,
    log: &ReleaseLog,
    stack_plan: &Plan,
    progress: &Progress,
) -> Option<ReleaseReport> {
    match outcome {
        Outcome::Created | Outcome::Updated => {
            keep_step(plan, aws, release, progress).await;
            Some(ReleaseReport {
                number: release.number,
                new: true,
            })
        }
        Outcome::Unchanged => {
            if let Some(live) = log.live() {
                keep_step(plan, aws, live, progress).await;
            }
            log.live.map(|number| ReleaseReport { number, new: false })
        }
        Outcome::DryRun => (stack_plan.kind != PlanKind::None).then_some(ReleaseReport {
            number: release.number,
            new: true,
        }),
    }
}

/// After a new release: its image gets the release's slot tag (`keep-N`), so the lifecycle
/// policy keeps it while the release is kept. A failure here is a warning: the release is
/// live either way, only its image is not yet protected from expiry.
pub(super) async fn keep_step(
    plan: &DeployPlan,
    aws: &Aws,
    release: &Release,
    progress: &Progress,
) {
    let Some(digest) = release.image_digest() else {
        return;
    };
    let tag = release::keep_tag(release.number);
    let step = progress.step(format!("keep tag {tag}"));
    let tagged = async {
        let registry = ecr::registry(aws, plan.registry.as_deref(), plan.insecure_registry).await?;
        registry.add_tag(&aws.names.repository, digest, &tag).await
    };
    match tagged.await {
        Ok(true) => step.done(format!(
            "{digest} kept (the lifecycle policy never expires it) while release {} is in the log",
            release.number
        )),
        Ok(false) => step.done("already there"),
        Err(e) => {
            step.fail("not tagged");
            progress.line(format!(
                "warning: could not tag the image {tag}: {e:#}; the lifecycle policy may expire \
                 it once 10 newer images exist (deploy again to retry)"
            ));
        }
    }
}

/// After the stack: the stage's budget made, replaced, kept or removed as the plan says
/// (previewed in a dry run). `recorded` is what the stack's tags said before this deploy.
pub(super) async fn budget_step(
    plan: &DeployPlan,
    recorded: Option<&BudgetSpec>,
    aws: &Aws,
    account: &str,
    progress: &Progress,
) -> Result<Option<BudgetReport>> {
    let dry_run = plan.mode == Mode::DryRun;
    if plan.budget == BudgetChoice::Keep && recorded.is_none() && dry_run {
        return Ok(None);
    }
    let name = budget::name_for(&aws.names.stack, &aws.region());
    let step = progress.step(format!("budget {name}"));
    let reconciled = budget::reconcile(aws, account, &plan.budget, recorded, dry_run).await;
    match reconciled {
        Ok(Reconciled { report, notes }) => {
            for note in notes {
                progress.line(note);
            }
            match &report {
                Some(report) => step.done(report.to_string()),
                None => step.done("none set (--budget USD makes one)"),
            }
            Ok(report)
        }
        // Not asked for: a missing Budgets permission must not fail the deploy.
        Err(e) if plan.budget == BudgetChoice::Keep => {
            step.fail("cannot change it");
            progress.line(format!("warning: {e:#}"));
            Ok(None)
        }
        Err(e) => {
            step.fail("cannot change it");
            Err(e)
        }
    }
}

/// The gate, with `--gate`: the model as it will ship, scored in this process on the gate file;
/// refused (nothing built, pushed or changed) below the threshold or below the live release's
/// score on the same file.
pub(super) async fn gate_step(
    gate: &Gate,
    model: &ModelFiles,
    aws: &Aws,
    progress: &Progress,
) -> Result<GateReport> {
    let step = progress.step("gate");
    let bytes = std::fs::read(&gate.data)
        .with_context(|| format!("--gate: cannot read {}", gate.data.display()))?;
    let data_sha256 = hex::encode(Sha256::digest(&bytes));
    // The file first: a bad one is refused before the stack is read or the model loaded. The
    // bytes hashed are the bytes scored.
    let file = match LabelledFile::parse(&gate.data, &bytes, None, "text", "label") {
        Ok(file) => file,
        Err(e) => {
            step.fail("the gate file is not usable");
            return Err(e.context("--gate"));
        }
    };
    let live = describe_stack(aws, &aws.names.stack)
        .await?
        .and_then(|stack| GateRecord::from_tags(&stack.tags))
        .filter(|record| record.data_sha256 == data_sha256)
        .and_then(|record| record.accuracy.parse::<f64>().ok());
    let files = model.clone();
    let scored = off_the_workers(move || score_files(&files, file)).await;
    let (examples, accuracy) = match scored {
        Ok(scored) => scored,
        Err(e) => {
            step.fail("could not score the model");
            return Err(e.context(format!("--gate {}", gate.data.display())));
        }
    };
    let report = GateReport {
        data: gate.data.display().to_string(),
        data_sha256,
        examples,
        accuracy,
        min_accuracy: gate.min_accuracy,
        live_accuracy: live,
    };
    let percent = |x: f64| format!("{:.2} %", x * 100.0);
    if accuracy < gate.min_accuracy {
        step.fail(format!(
            "{} < {} required",
            percent(accuracy),
            percent(gate.min_accuracy)
        ));
        bail!(
            "the model scores {} on {} ({examples} examples), below --min-accuracy {}: \
             nothing was deployed",
            percent(accuracy),
            report.data,
            percent(gate.min_accuracy)
        );
    }
    if let Some(live) = live.filter(|&live| accuracy < live) {
        step.fail(format!("{} < {} live", percent(accuracy), percent(live)));
        bail!(
            "the model scores {} on {} ({examples} examples), below the live release's {} on \
             the same file: nothing was deployed",
            percent(accuracy),
            report.data,
            percent(live)
        );
    }
    step.done(format!(
        "{} on {} ({examples} examples; required {}{})",
        percent(accuracy),
        report.data,
        percent(gate.min_accuracy),
        match live {
            Some(live) => format!(", live release {}", percent(live)),
            None => String::new(),
        }
    ));
    Ok(report)
}

/// The model's files.
pub(super) async fn model_step(plan: &DeployPlan, progress: &Progress) -> Result<ModelFiles> {
    let step = progress.step("model");
    match plan.model.files().await {
        Ok(model) => {
            let onnx = model
                .files
                .iter()
                .find(|f| f.name == "model.onnx")
                .map_or(0, |f| f.bytes.len() as u64);
            let need = sizing::minimum_memory_mb(&plan.model, onnx);
            let memory = &plan.settings.memory_mb;
            if memory.value < need {
                step.fail("needs more memory");
                bail!(
                    "memory {} MB ({}) is below what {} needs: at least {need} MB (its peak \
                     resident memory plus the runtime's); every call would run out of memory. \
                     Use --memory {need} or more (the default, {} MB, is the cheapest per text)",
                    memory.value,
                    memory.source,
                    model.source,
                    sizing::DEFAULT_MEMORY_MB
                );
            }
            step.done(format!(
                "{} ({} files, {})",
                model.source,
                model.files.len(),
                human_bytes(model.total_bytes())
            ));
            Ok(model)
        }
        Err(e) => {
            step.fail("not found");
            Err(e)
        }
    }
}

/// The function binary — carried, prebuilt or built now — and the record of it.
pub(super) async fn bootstrap_step(
    plan: &DeployPlan,
    progress: &Progress,
) -> Result<(Bootstrap, FunctionRecord)> {
    let arch = plan.function.arch;
    let has_libc = plan.base_image.has_libc();
    let read = |path: PathBuf| off_the_workers(move || Bootstrap::read(&path, arch, has_libc));
    let (bootstrap, source) = match &plan.bootstrap {
        BootstrapSource::Carried(carried) => (carried.bootstrap.clone(), FunctionSource::Carried),
        BootstrapSource::Prebuilt(path) => (read(path.clone()).await?, FunctionSource::Prebuilt),
        BootstrapSource::Build { verbose } => {
            let built = bootstrap::build(arch, progress, *verbose).await?;
            (read(built.path).await?, FunctionSource::Built)
        }
    };
    let (bootstrap, sha256) = off_the_workers(move || {
        let sha256 = bootstrap.sha256();
        Ok((bootstrap, sha256))
    })
    .await?;
    let record = FunctionRecord {
        source,
        version: bootstrap.build.as_ref().map(|b| b.version.clone()),
        commit: bootstrap.build.as_ref().map(|b| b.commit.clone()),
        sha256,
    };
    let step = progress.step("bootstrap");
    step.done(format!(
        "{record}, {} ({})",
        arch.lambda_name(),
        human_bytes(bootstrap.bytes.len() as u64)
    ));
    Ok((bootstrap, record))
}

/// How the image is made.
pub enum Builder {
    /// The Docker engine builds (from this context), runs and pushes it.
    Docker(Engine, BuildContext),
    /// Written here, layer by layer, and pushed with the registry API.
    Oci(OciImage),
}

impl Builder {
    pub(super) fn kind(&self) -> BuilderKind {
        match self {
            Builder::Docker(..) => BuilderKind::Docker,
            Builder::Oci(_) => BuilderKind::Oci,
        }
    }
}

/// The builder: the Docker engine when asked for or when one answers, else no daemon at all.
pub(super) async fn builder_step(
    plan: &DeployPlan,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    progress: &Progress,
) -> Result<Builder> {
    let step = progress.step("builder");
    let engine = match plan.builder {
        BuilderChoice::Oci => None,
        BuilderChoice::Docker | BuilderChoice::Auto => match Engine::connect().await {
            Ok(engine) => Some(engine),
            Err(e) if plan.builder == BuilderChoice::Docker => {
                step.fail("Docker engine unreachable");
                return Err(e);
            }
            Err(_) => None,
        },
    };
    if let Some(engine) = engine {
        step.done(format!(
            "Docker engine {} (API {})",
            engine.version.version, engine.version.api_version
        ));
        let (bootstrap, model) = (bootstrap.clone(), model.clone());
        let (base, arch) = (plan.base_image.name().to_string(), plan.function.arch);
        let context =
            off_the_workers(move || BuildContext::new(&bootstrap, &model, &base, arch)).await?;
        return Ok(Builder::Docker(engine, context));
    }
    if plan.base_image.has_libc() {
        step.fail("no Docker engine");
        bail!(
            "--base-image {} needs the Docker engine (the daemonless builder writes FROM scratch images): \
             start Docker or drop --base-image",
            plan.base_image.name()
        );
    }
    let (bootstrap, model, arch) = (bootstrap.clone(), model.clone(), plan.function.arch);
    let image = off_the_workers(move || oci::build(&bootstrap, &model, arch)).await?;
    step.done(format!(
        "daemonless OCI ({}{})",
        image.digest(),
        if plan.builder == BuilderChoice::Auto {
            "; no Docker engine answered"
        } else {
            ""
        }
    ));
    Ok(Builder::Oci(image))
}

/// The account: whose account this goes to.
pub(super) async fn account_step(aws: &Aws, progress: &Progress) -> Result<Identity> {
    let step = progress.step("AWS account");
    let identity = aws.caller_identity().await?;
    step.done(format!("{} in {}", identity.account, aws.region()));
    Ok(identity)
}

/// Whether this deploy may take what it finds under its names: a stack this tool did not make
/// (no `ummatics-sentiment:tool` tag) is refused unless `--adopt`; the repository may be
/// claimed with `--adopt`, or when it is untagged beside a stack of ours (an earlier version
/// made both, before repositories were tagged).
pub(super) fn ownership(plan: &DeployPlan, live: Option<&StackState>) -> Result<ecr::Claim> {
    let ours = live.map(StackState::is_ours);
    if ours == Some(false) && !plan.adopt {
        let name = live.map(|s| s.name.as_str()).unwrap_or_default();
        bail!(
            "stack {name} exists and this tool did not make it (no {TAG_TOOL} tag): deploy would \
             replace its template and resources. Pass --adopt if it is this stage's to manage, or \
             deploy another --stage"
        );
    }
    Ok(match (plan.adopt, ours) {
        (true, _) => ecr::Claim::Adopt,
        (false, Some(true)) => ecr::Claim::EarlierVersion,
        _ => ecr::Claim::None,
    })
}

/// A `--stage` the configuration file does not define, and that is not deployed here, is
/// refused unless `--new-stage`: with `[stages.dev]` in the file, `--stage prdo` would plan a
/// new stack, repository and function (and with `--yes`, make them).
pub(super) async fn stage_step(plan: &DeployPlan, aws: &Aws, stage: Option<&str>) -> Result<()> {
    let (Some(config), Some(stage)) = (&plan.config, stage) else {
        return Ok(());
    };
    if config.other_stages.is_empty() || plan.new_stage {
        return Ok(());
    }
    if describe_stack(aws, &aws.names.stack).await?.is_some() {
        return Ok(());
    }
    bail!(
        "stage {stage:?} is not in {} (it defines [stages.{}]) and is not deployed in {}: a \
         mistyped --stage would create a new stack, repository and function. Use one of those \
         stages, or pass --new-stage to create {stage:?} on purpose",
        config.path.display(),
        config.other_stages.join("], [stages."),
        aws.region()
    );
}

/// Before anything is pushed: the account's Lambda quotas in the region (GetAccountSettings)
/// allow the reserved concurrency, so the stack cannot roll back on it after the push. A
/// quota that cannot be read is a warning (the permission may be missing), not a refusal.
pub(super) async fn quota_step(plan: &DeployPlan, aws: &Aws, progress: &Progress) -> Result<()> {
    let step = progress.step("Lambda quotas");
    let account = match account_concurrency(aws).await {
        Ok(account) => account,
        Err(e) => {
            step.fail("cannot read them");
            progress.line(format!(
                "warning: {e:#}; the stack fails later if the account's concurrency cannot take \
                 this deploy's reservation"
            ));
            return Ok(());
        }
    };
    if let Some(wanted) = plan.function.reserved_concurrency {
        let current = reserved_concurrency(aws, &aws.names.function).await?;
        let public_default = plan.function.url_auth == UrlAuth::None
            && plan.settings.reserved_concurrency.value.is_none();
        if let Err(why) = account.check_reservation(&aws.region(), wanted, current, public_default)
        {
            step.fail("too low for this deploy");
            bail!(why);
        }
    }
    step.done(format!(
        "{} concurrent executions, {} unreserved",
        account.total, account.unreserved
    ));
    // New accounts may also have a lower memory quota; no API reads it.
    if plan.function.memory_mb > 3008 && account.total < 1000 {
        progress.line(format!(
            "warning: this account's concurrency quota ({}) is below Lambda's default (1000), as \
             on new accounts, whose memory may also be limited to 3008 MB; if the stack fails on \
             MemorySize, deploy with --memory 3008 or less, or request an increase",
            account.total
        ));
    }
    Ok(())
}

/// Before a stack is created: a function of the same name that no stack of ours made (the
/// old SAM deployment uses the default name) would fail the create on the name, after the
/// push. It is named and left alone, with the ways out.
pub(super) async fn function_step(aws: &Aws, live: Option<&StackState>) -> Result<()> {
    if live.is_some_and(|stack| !stack.is_failed_create()) {
        return Ok(());
    }
    let name = &aws.names.function;
    if function_exists(aws, name).await? {
        bail!(
            "function {name} exists in {} and no stack of this stage made it (an earlier \
             deployment, such as the old SAM stack, uses the name): deploy leaves it alone. \
             Deploy another --stage (its names get the stage as a suffix), or delete the old \
             function if it can go (aws lambda delete-function --function-name {name})",
            aws.region()
        );
    }
    Ok(())
}

/// Before a stack is created: the stack makes the function's log group itself, and
/// CloudFormation fails the create if one exists. One left by this stack (it carries the
/// stack's tag: an interrupted destroy) is deleted; anyone else's is refused before anything
/// is pushed.
pub(super) async fn log_group_step(
    plan: &DeployPlan,
    aws: &Aws,
    live: Option<&StackState>,
    progress: &Progress,
) -> Result<()> {
    if live.is_some_and(|stack| !stack.is_failed_create()) {
        return Ok(());
    }
    let group = log_group(&aws.names.function);
    let Some(tags) = log_group_tags(aws, &group).await? else {
        return Ok(());
    };
    if tags.get(ecr::TAG_STACK) != Some(&aws.names.stack) {
        bail!(
            "log group {group} exists and is not this tool's (no {} tag naming {}): the stack \
             creates the function's log group and CloudFormation refuses to while one exists. \
             Delete it if its logs can go (aws logs delete-log-group --log-group-name {group}), \
             or deploy another --stage",
            ecr::TAG_STACK,
            aws.names.stack
        );
    }
    let step = progress.step(format!("log group {group}"));
    if plan.mode == Mode::DryRun {
        step.done("left by an earlier stack of this stage: would be deleted");
    } else {
        delete_log_group(aws, &group).await?;
        step.done("left by an earlier stack of this stage: deleted");
    }
    Ok(())
}

/// The ECR repository, taken only when it is this stack's or `claim` allows. A
/// missing one is made only when the image is ready to go (built, smoke-tested, the registry
/// answering): a failed build or an unreachable registry leaves nothing in ECR.
pub(super) async fn repository_step<'a>(
    plan: &DeployPlan,
    aws: &'a Aws,
    claim: ecr::Claim,
    progress: &Progress,
) -> Result<PushTarget<'a>> {
    let step = progress.step(format!("ECR repository {}", aws.names.repository));
    let existing = ecr::repository(aws, &aws.names.repository).await?;
    let Some(found) = &existing else {
        step.done(if plan.mode == Mode::DryRun {
            "would be created"
        } else {
            "to be created once the image is ready"
        });
        return Ok(PushTarget {
            aws,
            claim,
            repository: None,
        });
    };
    if plan.mode == Mode::DryRun {
        let owner = ecr::owner(aws, found, &aws.names.stack).await?;
        let claimed = ecr::may_take(owner, claim, &found.name, &aws.names.stack)?;
        step.done(if claimed {
            "exists; would be tagged as this stack's"
        } else {
            "exists"
        });
        return Ok(PushTarget {
            aws,
            claim,
            repository: existing,
        });
    }
    let (r, origin) =
        ecr::ensure_repository(aws, &aws.names.repository, &aws.names.stack, claim).await?;
    step.done(match origin {
        ecr::Origin::Created => {
            "created (scan on push, keeps the kept releases' images and 10 more)"
        }
        ecr::Origin::Existed => "exists",
        ecr::Origin::Claimed => "exists; now tagged as this stack's",
    });
    Ok(PushTarget {
        aws,
        claim,
        repository: Some(r),
    })
}

/// The ECR repository an image goes to: there already, or made by [`PushTarget::ready`] just
/// before the first upload.
pub(super) struct PushTarget<'a> {
    aws: &'a Aws,
    claim: ecr::Claim,
    pub(super) repository: Option<Repository>,
}

impl PushTarget<'_> {
    /// The repository, made now if it is missing.
    async fn ready(&mut self, progress: &Progress) -> Result<()> {
        if self.repository.is_some() {
            return Ok(());
        }
        let names = &self.aws.names;
        let (r, _) =
            ecr::ensure_repository(self.aws, &names.repository, &names.stack, self.claim).await?;
        progress.line(format!(
            "ECR repository {} created (scan on push, keeps the kept releases' images and 10 more)",
            r.name
        ));
        self.repository = Some(r);
        Ok(())
    }
}

/// The image in the registry.
pub(super) struct Image {
    pub(super) tag: String,
    /// The manifest digest (`None` in a dry run that would push).
    pub(super) digest: Option<String>,
    pub(super) pushed: bool,
    pub(super) blobs: Vec<oci::BlobReport>,
    pub(super) smoke_test: SmokeTest,
}

/// The image — nothing to do when the registry already has it; else smoke-tested,
/// then pushed.
pub(super) async fn image_step(
    plan: &DeployPlan,
    aws: &Aws,
    builder: &Builder,
    target: &mut PushTarget<'_>,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    progress: &Progress,
) -> Result<Image> {
    let step = progress.step("image");
    let registry = ecr::registry(aws, plan.registry.as_deref(), plan.insecure_registry).await?;
    let repository = &aws.names.repository;
    // The reference that proves "already pushed": the OCI manifest's own digest (known before
    // any push), or the Docker path's context tag.
    let (tag, lookup) = match builder {
        Builder::Oci(image) => (image.tag(), image.digest().to_string()),
        Builder::Docker(_, context) => (context.tag(), context.tag()),
    };
    let existing = match target.repository.is_some() {
        true => registry.manifest_digest(repository, &lookup).await?,
        false => None,
    };
    let mut image = Image {
        tag,
        digest: existing,
        pushed: false,
        blobs: Vec::new(),
        smoke_test: SmokeTest::Skipped,
    };
    if let Some(digest) = &image.digest {
        step.done(format!(
            "{} already in {} ({digest})",
            image.tag,
            registry.host()
        ));
        return Ok(image);
    }
    // The push target must answer, and take the login, before anything is made for it: a
    // dry run says so (it cannot "succeed" against a registry that is not there).
    registry
        .check()
        .await
        .with_context(|| format!("the push target {} does not answer", registry.host()))?;
    if plan.mode == Mode::DryRun {
        let what = match builder {
            Builder::Docker(_, context) => context_summary(context),
            Builder::Oci(oci) => format!("{} blobs", oci.blobs().len()),
        };
        step.done(format!(
            "{} would be built and pushed ({what}) to {}, which answers and takes the login",
            image.tag,
            registry.host()
        ));
        return Ok(image);
    }
    match builder {
        Builder::Docker(engine, context) => {
            let local = format!("{}:{}", registry.image(repository), image.tag);
            let arch = plan.function.arch;
            let self_test = plan.smoke_test && arch == Arch::host();
            let base = plan.base_image.name();
            if engine
                .build_tested(context, &local, base, arch, self_test, &step)
                .await?
            {
                image.smoke_test = SmokeTest::Passed;
            }
            target.ready(progress).await?;
            step.set(format!("pushing to {}", registry.host()));
            let digest = engine
                .push_to(&registry, repository, &image.tag, arch, progress)
                .await?;
            image.digest = Some(digest);
        }
        Builder::Oci(oci) => {
            if plan.smoke_test {
                image.smoke_test =
                    smoke_test_artifact(plan, bootstrap, model, &step, progress).await?;
            }
            target.ready(progress).await?;
            image.blobs = oci::push(oci, &registry, repository, &step, progress).await?;
            image.digest = Some(oci.digest().to_string());
        }
    }
    image.pushed = true;
    step.done(format!(
        "{} pushed, {}",
        image.tag,
        image.digest.as_deref().unwrap_or_default()
    ));
    Ok(image)
}

/// The daemonless path's smoke test: the artifact run natively or under an emulator.
pub(super) async fn smoke_test_artifact(
    plan: &DeployPlan,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    step: &crate::output::Step,
    progress: &Progress,
) -> Result<SmokeTest> {
    let Some(runner) = Runner::for_arch(plan.function.arch) else {
        progress.line(format!(
            "smoke test skipped: this machine cannot run {} binaries (install qemu-user-static)",
            plan.function.arch.lambda_name()
        ));
        return Ok(SmokeTest::Skipped);
    };
    step.set("smoke test: bootstrap --self-test on the artifact");
    bootstrap::self_test(bootstrap, model, &runner).await?;
    Ok(match runner {
        Runner::Native => SmokeTest::Passed,
        Runner::Emulated(_) => SmokeTest::PassedEmulated,
    })
}

/// The stack — made ready (a failed first create is deleted), planned as a change
/// set, shown, confirmed and applied.
pub(super) async fn stack_step(
    plan: &DeployPlan,
    deployer: &StackDeployer<'_>,
    live: Option<StackState>,
    params: &StackParams,
    template: &str,
    tracker: &Tracker,
    progress: &Progress,
) -> Result<Planned> {
    let (existing, preview_only) = ready_stack(plan, deployer, live, progress).await?;
    let step = progress.step(format!("change set for {}", deployer.name()));
    let stack_plan = if preview_only {
        deployer.preview_create(params)
    } else {
        let name = StackDeployer::new_change_set_name();
        tracker.set(Phase::ChangeSet {
            name: name.clone(),
            creates_stack: existing.as_ref().is_none_or(|s| s.is_review()),
        });
        deployer
            .plan(params, existing.as_ref(), template, &name)
            .await?
    };
    step.done(match stack_plan.kind {
        PlanKind::Create => "create",
        PlanKind::Update => "update",
        PlanKind::None => "no changes",
    });
    print_plan(&stack_plan, progress);

    let ask = match plan.mode {
        Mode::DryRun => {
            deployer.discard(&stack_plan).await?;
            return Ok(Planned::Done(stack_plan, Outcome::DryRun));
        }
        Mode::Apply { ask } => ask,
    };
    if stack_plan.kind == PlanKind::None {
        return Ok(Planned::Done(stack_plan, Outcome::Unchanged));
    }
    if ask {
        // Declined, or no terminal to ask on: the change set goes, nothing is half-made.
        let answer = confirm_async(
            "apply these changes?",
            "pass --yes to apply without a prompt",
        )
        .await;
        if !matches!(answer, Ok(true)) {
            deployer.discard(&stack_plan).await?;
            answer?;
            bail!("cancelled: nothing was changed in the stack");
        }
    }
    Ok(Planned::Confirmed(stack_plan))
}

/// Where the stack step leaves a deploy: done (a dry run, nothing to change), or a change set
/// confirmed and ready to execute.
pub(super) enum Planned {
    Done(Plan, Outcome),
    Confirmed(Plan),
}

/// Applying: the confirmed change set executed.
pub(super) async fn apply_step(
    deployer: &StackDeployer<'_>,
    stack_plan: Plan,
    tracker: &Tracker,
) -> Result<(Plan, Outcome)> {
    deployer.apply(&stack_plan, tracker).await?;
    let outcome = match stack_plan.kind {
        PlanKind::Create => Outcome::Created,
        _ => Outcome::Updated,
    };
    Ok((stack_plan, outcome))
}

/// The stack as it stands, ready for a change set: refused while CloudFormation works on it or
/// after a failed rollback; a failed first create is deleted (a dry run only says it would be,
/// and previews a create: the dead stack cannot take a change set — the `bool`).
pub(super) async fn ready_stack(
    plan: &DeployPlan,
    deployer: &StackDeployer<'_>,
    live: Option<StackState>,
    progress: &Progress,
) -> Result<(Option<StackState>, bool)> {
    let Some(stack) = live else {
        return Ok((None, false));
    };
    if stack.is_busy() {
        bail!(
            "stack {} is {}: CloudFormation is still working on it; wait for it to finish and deploy again",
            stack.name,
            stack.status
        );
    }
    if stack.status == StackStatus::UpdateRollbackFailed {
        bail!(
            "stack {} is UPDATE_ROLLBACK_FAILED: run `aws cloudformation continue-update-rollback --stack-name {}`, then deploy again",
            stack.name,
            stack.name
        );
    }
    if !stack.is_failed_create() {
        return Ok((Some(stack), false));
    }
    if plan.mode == Mode::DryRun {
        progress.line(format!(
            "stack {} is {} (its first create failed): deploy would delete it and create it again",
            stack.name, stack.status
        ));
        return Ok((None, true));
    }
    let step = progress.step(format!("stack {}", stack.name));
    step.set(format!(
        "{} from a failed create: deleting it to create it again",
        stack.status
    ));
    deployer.delete(true).await?;
    step.done(format!(
        "deleted the {} stack; creating it again",
        stack.status
    ));
    Ok((None, false))
}

/// What to try after a deploy.
pub(super) fn next_command(global: &GlobalArgs) -> String {
    let stage = global
        .aws
        .stage
        .as_deref()
        .map(|s| format!(" --stage {s}"))
        .unwrap_or_default();
    format!("ummatics-sentiment{stage} invoke \"I love this!\" \"This is terrible\"")
}
