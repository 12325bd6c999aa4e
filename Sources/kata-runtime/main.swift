#if canImport(Glibc)
import Glibc
#endif
import CLI
import Guest

// One binary, three roles: PID 1 in the VM is the guest init; otherwise the CLI
// (which also runs the hidden `keeper` command as the per-container host process).
if getpid() == 1 {
    GuestInit.main()
}
exit(CLI.main(CommandLine.arguments))
