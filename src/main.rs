//! The `gitops-seal` binary: the `cli` module, a thin shell over the library.
// The crate root covers every module of the binary, `cli` included.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main())
}
