use std::process::ExitCode;

// mimalloc: the proxy allocates many small short-lived buffers per request,
// where it measurably beats glibc's malloc (see bench/ and the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    otpgate::cli::main()
}
