fn main() -> std::process::ExitCode {
    kiln::main()
}
