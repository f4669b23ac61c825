use std::process::ExitCode;

fn main() -> ExitCode {
    otpgate::cli::main()
}
