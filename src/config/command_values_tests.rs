//! Tests of the `[command]` value parsers.

use std::time::Duration;

use toml::{Table, Value};

use super::super::command_values::{parse_bound, parse_duration};
use super::Bound;

#[test]
fn durations_and_bounds() {
    assert_eq!(
        parse_duration(&Value::String("30m".into())),
        Ok(Duration::from_secs(1800))
    );
    assert_eq!(
        parse_duration(&Value::String("2h".into())),
        Ok(Duration::from_secs(7200))
    );
    for bad in ["0s", "10", "1.5h", "m"] {
        assert!(parse_duration(&Value::String(bad.into())).is_err(), "{bad}");
    }
    let t: Table = toml::from_str("c = { at_least = 0.9 }").unwrap();
    assert_eq!(parse_bound(&t["c"]), Ok(Bound::AtLeast(0.9)));
    let t: Table = toml::from_str("c = { at_most = 1, at_least = 2 }").unwrap();
    assert!(parse_bound(&t["c"]).is_err());
    assert!(Bound::AtMost(1.0).holds(1.0) && !Bound::AtLeast(1.0).holds(0.5));
}
