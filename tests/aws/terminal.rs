//! deploy on a real terminal (a pseudo-terminal, its output replayed through a terminal
//! emulator): what the user sees when asked to apply the change set.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::standins;

const ROWS: u16 = 200;
const COLS: u16 = 200;

/// A pseudo-terminal of ROWS × COLS: (master, slave).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened into the two integers.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// What the terminal shows after `bytes`.
fn screen(bytes: &[u8]) -> String {
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    parser.process(bytes);
    parser.screen().contents()
}

/// A command running on a pseudo-terminal (stdin, stdout and stderr), everything it writes
/// collected by a thread of its own.
struct OnTerminal {
    child: std::process::Child,
    output: Arc<Mutex<Vec<u8>>>,
    input: std::fs::File,
    drain: std::thread::JoinHandle<()>,
}

impl OnTerminal {
    fn spawn(mut command: std::process::Command) -> OnTerminal {
        let (master, slave) = pty();
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().unwrap();
        // The parent's copies of the slave go: the master sees the end when the child ends.
        drop(command);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = std::fs::File::from(master.try_clone().unwrap());
        let sink = output.clone();
        let drain = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        OnTerminal {
            child,
            output,
            input: std::fs::File::from(master),
            drain,
        }
    }

    /// What the terminal shows now.
    fn shown(&self) -> String {
        screen(&self.output.lock().unwrap())
    }

    /// Waits until the terminal shows `text` (or the process ends, or two minutes go by).
    fn wait_for(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let shown = self.shown();
            if shown.contains(text) {
                return shown;
            }
            if start.elapsed() > Duration::from_secs(120)
                || self.child.try_wait().unwrap().is_some()
            {
                panic!("the terminal never showed {text:?}; it shows:\n{shown}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most a minute) for the process to end; returns its status and everything
    /// it wrote.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the process did not end; it shows:\n{}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.drain.join().unwrap();
        let bytes = self.output.lock().unwrap().clone();
        (status, bytes)
    }
}

/// At the prompt every finished step is still on screen — model, bootstrap, account, quotas,
/// repository, image — above the change set's heading (stack name, create) and its changes;
/// nothing redraws over them. Answering no changes nothing.
#[test]
fn at_the_prompt_every_finished_step_is_still_on_screen() {
    let s = standins();
    let stage = "pty";
    s.destroy(stage);
    let mut command = s.cli_process(stage);
    command
        .args([
            "deploy",
            "--model",
            "mini",
            "--builder",
            "oci",
            "--registry",
        ])
        .arg(&s.registry)
        .arg("--bootstrap")
        .arg(&s.bootstrap)
        .env("TERM", "xterm-256color");
    let mut terminal = OnTerminal::spawn(command);
    terminal.wait_for("apply these changes? [y/N]");
    // Long enough for any spinner still ticking to redraw.
    std::thread::sleep(Duration::from_millis(800));
    let shown = terminal.shown();
    for step in [
        "✓ model: sst2-mini (embedded)",
        "✓ bootstrap:",
        "✓ builder: daemonless OCI",
        "✓ AWS account: 123456789012 in us-east-1",
        "✓ Lambda quotas:",
        "✓ ECR repository ummatics-sentiment-pty:",
        "✓ image:",
        "✓ change set for ummatics-sentiment-stack-pty: create",
        "MemorySize",
        "apply these changes? [y/N]",
    ] {
        assert!(
            shown.contains(step),
            "{step:?} is not on screen at the prompt:\n{shown}"
        );
    }
    // In order: the steps, then the heading, then the prompt.
    let at = |text: &str| shown.find(text).unwrap();
    assert!(at("✓ model:") < at("✓ image:"));
    assert!(at("✓ image:") < at("✓ change set for"));
    assert!(at("✓ change set for") < at("apply these changes?"));

    terminal.input.write_all(b"n\n").unwrap();
    let (status, bytes) = terminal.finish();
    assert!(!status.success());
    let shown = screen(&bytes);
    assert!(
        shown.contains("cancelled: nothing was changed in the stack"),
        "{shown}"
    );
    // Every step is still there after the answer, too.
    assert!(shown.contains("✓ AWS account:"), "{shown}");
    s.destroy(stage);
}

/// Runs `command` on a pseudo-terminal to its end; returns everything it wrote.
fn on_terminal(command: std::process::Command) -> Vec<u8> {
    OnTerminal::spawn(command).finish().1
}

/// ✓ and ✗ are green and red on a terminal, plain with NO_COLOR (no-color.org) and in a pipe.
#[test]
fn marks_are_coloured_on_a_terminal_only_and_never_with_no_color() {
    let s = standins();
    let doctor = || {
        let mut command = s.cli_process("colour");
        command
            .args(["doctor", "--model", "mini"])
            .env_remove("NO_COLOR");
        command
    };
    let coloured = String::from_utf8_lossy(&on_terminal(doctor())).to_string();
    assert!(
        coloured.contains("\x1b[32m✓\x1b[0m AWS credentials"),
        "{coloured:?}"
    );
    let mut plain = doctor();
    plain.env("NO_COLOR", "1");
    let plain = String::from_utf8_lossy(&on_terminal(plain)).to_string();
    assert!(plain.contains("✓ AWS credentials"), "{plain:?}");
    assert!(!plain.contains("\x1b[32m"), "{plain:?}");
    let piped = doctor().output().unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(
        piped.contains("✓ AWS credentials") && !piped.contains('\x1b'),
        "{piped:?}"
    );
}
