//! Crash injection for the crash-consistency tests.
//!
//! Each multi-step operation names its steps with [`step`]. When the
//! environment variable `VMHOST_KILL_AT` equals a step's name, the process
//! sends itself SIGKILL there: the same as `kill -9` from outside at that
//! exact moment, with no unwinding and no destructors. Unset, a step costs
//! one environment lookup. Each step is also a trace event, so
//! `RUST_LOG=vmhost=trace` shows where an operation spends its time.

pub fn step(name: &str) {
    tracing::trace!(step = name);
    if let Some(target) = std::env::var_os("VMHOST_KILL_AT") {
        if target == name {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
            // SIGKILL to ourselves is not deliverable-later; never reached.
            std::process::abort();
        }
    }
}
