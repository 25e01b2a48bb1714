//! The `sweep` binary: parse arguments, call the library, print errors, set the exit code.

fn main() {
    std::process::exit(sweep::cli::main());
}
