//! The AWS regions this build knows: the SDK's own partition data (aws, aws-cn, aws-us-gov,
//! the European Sovereign Cloud and the isolated partitions), copied from aws-sdk-sts 1.124's
//! endpoint resolver, which keeps it private. A region newer than this build is possible, so
//! an unknown name is a warning everywhere but `doctor`, where it is the diagnosis.

/// `(name, description)`.
pub const KNOWN: &[(&str, &str)] = &[
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-east-2", "Asia Pacific (Taipei)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ap-southeast-5", "Asia Pacific (Malaysia)"),
    ("ap-southeast-6", "Asia Pacific (New Zealand)"),
    ("ap-southeast-7", "Asia Pacific (Thailand)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("eu-central-2", "Europe (Zurich)"),
    ("eu-north-1", "Europe (Stockholm)"),
    ("eu-south-1", "Europe (Milan)"),
    ("eu-south-2", "Europe (Spain)"),
    ("eu-west-1", "Europe (Ireland)"),
    ("eu-west-2", "Europe (London)"),
    ("eu-west-3", "Europe (Paris)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-central-1", "Middle East (UAE)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("mx-central-1", "Mexico (Central)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("cn-north-1", "China (Beijing)"),
    ("cn-northwest-1", "China (Ningxia)"),
    ("eusc-de-east-1", "AWS European Sovereign Cloud (Germany)"),
    ("us-iso-east-1", "US ISO East"),
    ("us-iso-west-1", "US ISO WEST"),
    ("us-isob-east-1", "US ISOB East (Ohio)"),
    ("us-isob-west-1", "US ISOB West"),
    ("eu-isoe-west-1", "EU ISOE West"),
    ("us-isof-east-1", "US ISOF EAST"),
    ("us-isof-south-1", "US ISOF SOUTH"),
    ("us-gov-east-1", "AWS GovCloud (US-East)"),
    ("us-gov-west-1", "AWS GovCloud (US-West)"),
];

/// The description of a known region.
pub fn describe(region: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(r, _)| *r == region).map(|(_, d)| *d)
}

/// Known regions that share `region`'s area and direction (`us-east-9` → `us-east-1`,
/// `us-east-2`), or its area (`eu-centre-1` → the `eu-` ones): what the user may have meant.
pub fn near(region: &str) -> Vec<&'static str> {
    let stem = region.trim_end_matches(|c: char| c.is_ascii_digit());
    let same_stem: Vec<&str> = KNOWN
        .iter()
        .map(|(r, _)| *r)
        .filter(|r| r.starts_with(stem) && !stem.is_empty())
        .collect();
    if !same_stem.is_empty() {
        return same_stem;
    }
    let area = region.split('-').next().unwrap_or_default();
    KNOWN
        .iter()
        .map(|(r, _)| *r)
        .filter(|r| !area.is_empty() && r.split('-').next() == Some(area))
        .collect()
}

/// Why `region` is not one this build knows, with what it may have meant.
pub fn unknown(region: &str) -> Option<String> {
    if describe(region).is_some() {
        return None;
    }
    let near = near(region);
    Some(if near.is_empty() {
        format!("{region:?} is not an AWS region this build knows (e.g. us-east-1, eu-west-1)")
    } else {
        format!(
            "{region:?} is not an AWS region this build knows; did you mean {}?",
            near.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_and_near_misses() {
        assert_eq!(describe("us-east-1"), Some("US East (N. Virginia)"));
        assert_eq!(unknown("eu-west-1"), None);
        let e = unknown("us-east-9").unwrap();
        assert!(e.contains("did you mean us-east-1, us-east-2?"), "{e}");
        assert!(unknown("eu-centre-1").unwrap().contains("eu-central-1"));
        assert!(unknown("mars-1").unwrap().contains("e.g. us-east-1"));
    }
}
