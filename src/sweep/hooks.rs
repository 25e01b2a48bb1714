//! Test hooks: behaviour the end-to-end tests need (slow runs, a pause in the final write, a
//! panicking run), read once from the environment when the command starts and carried in the
//! run options, so that no worker reads the environment.

use std::time::Duration;

/// What the tests asked for; all off in normal use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestHooks {
    /// `SWEEP_TEST_RUN_DELAY_MS`: sleep this long at the start of every run, so that a test can
    /// kill the sweep half-way.
    pub run_delay: Option<Duration>,
    /// `SWEEP_TEST_FINAL_WRITE_DELAY_MS`: pause after each final table, so that a test can kill
    /// the process in the middle of the final write.
    pub final_write_delay: Option<Duration>,
    /// `SWEEP_TEST_PANIC_RUN=<run_index>`: that run panics (it must become a `failed` row).
    pub panic_run: Option<usize>,
}

impl TestHooks {
    /// Reads the hooks from the environment.
    pub fn from_env() -> TestHooks {
        let millis = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
        };
        TestHooks {
            run_delay: millis("SWEEP_TEST_RUN_DELAY_MS"),
            final_write_delay: millis("SWEEP_TEST_FINAL_WRITE_DELAY_MS"),
            panic_run: std::env::var("SWEEP_TEST_PANIC_RUN")
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }
}
