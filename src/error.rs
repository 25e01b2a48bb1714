//! The crate's error type. Every variant says what went wrong in terms the user can act on:
//! the file, key, value or row at fault and what would be accepted. `exit_code` maps bad input
//! (config, data, arguments, a results folder that is not a finished sweep) to 2 and failures of
//! the tool itself (I/O after validation, a thread pool, a panicked writer) to 1, and a merge
//! with runs still missing to 3. The README's
//! exit-code table lists them.

use std::path::PathBuf;

/// Errors raised by the library. Messages are complete sentences meant for the terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (file or `--set`) is invalid; the message names the key and origin.
    #[error("{0}")]
    Config(String),
    /// The data (file or generator parameters) cannot be used; the message names row/column.
    #[error("{0}")]
    Data(String),
    /// A numerical precondition failed (for example a singular covariance without `whiten_eps`).
    #[error("{0}")]
    Numerical(String),
    /// A command-line argument names something that is not there (a table missing from a
    /// results folder, an unknown `--run`, a `--cell` that matches no run, a bad `--poly`).
    #[error("{0}")]
    Usage(String),
    /// A results folder holds something this version did not write (a corrupt or hand-edited
    /// manifest, a part with an unknown status).
    #[error("{0}")]
    Results(String),
    /// The tool itself failed after the input was accepted (thread pool, writer thread, a run
    /// that was not saved).
    #[error("{0}")]
    Tool(String),
    /// A sharded sweep cannot be merged yet: runs are missing (the message lists them and the
    /// array indices to resubmit). Exit code 3.
    #[error("{0}")]
    Incomplete(String),
    /// `sweep merge` of an adaptive sweep whose round is done: the verdict asks for another round
    /// of seeds (the message names it); no table was written. Exit code 6.
    #[error("{0}")]
    NextRound(String),
    /// `sweep reproduce` re-ran the tables and they differ (the report says how). Exit code 4.
    #[error("{0}")]
    NotReproduced(String),
    /// sweep was stopped by a signal while command runs were alive: they were ended, the runs
    /// saved before it kept. Exit code 128 + the signal.
    #[error("{message}")]
    Stopped { signal: i32, message: String },
    /// `fail_fast`: the first runs to finish all failed; the saved runs are kept, no table is
    /// written. Exit code 5.
    #[error("{0}")]
    FailFast(String),
    /// The output location cannot be used.
    #[error("cannot write to {path}: {message}")]
    Output { path: PathBuf, message: String },
    /// Drawing a figure failed.
    #[error("plotting failed: {0}")]
    Plot(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// polars failed while reading or writing a table.
    #[error("{context}: {source}")]
    Table {
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },
}

impl Error {
    /// Process exit code for this error: 2 for bad input, 1 for failures of the tool itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::Data(_)
            | Error::Numerical(_)
            | Error::Usage(_)
            | Error::Results(_)
            | Error::Output { .. } => 2,
            Error::Tool(_) | Error::Io { .. } | Error::Table { .. } | Error::Plot(_) => 1,
            Error::Incomplete(_) => 3,
            Error::Stopped { signal, .. } => 128 + signal,
            Error::FailFast(_) => 5,
            Error::NotReproduced(_) => 4,
            Error::NextRound(_) => 6,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn table(context: impl Into<String>, source: polars::error::PolarsError) -> Self {
        Error::Table {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_exits_2_and_tool_failures_exit_1() {
        let io = || std::io::Error::other("disk full");
        let bad_input = [
            Error::Config("c".into()),
            Error::Data("d".into()),
            Error::Numerical("n".into()),
            Error::Usage("u".into()),
            Error::Results("r".into()),
            Error::Output {
                path: "out".into(),
                message: "m".into(),
            },
        ];
        for e in &bad_input {
            assert_eq!(e.exit_code(), 2, "{e:?}");
        }
        let tool = [
            Error::Tool("t".into()),
            Error::io("writing", io()),
            Error::Plot("p".into()),
        ];
        for e in &tool {
            assert_eq!(e.exit_code(), 1, "{e:?}");
        }
    }
}
