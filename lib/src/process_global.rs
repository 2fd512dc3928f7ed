//! One value per process, shared by every notebook cell.
//!
//! evcxr compiles each cell into its own shared library, and each carries its own copy of this
//! crate's statics: a plain `static` would be a different value in every cell. The first copy
//! that asks creates the value (leaked: it lives as long as the process) and publishes its
//! address in an environment variable as `<pid>:<address>`; later copies read it there. The pid
//! keeps child processes, which inherit the environment, from using an address that is not
//! theirs.

/// The process's value published under `env`, created by `create` (which must return a leaked,
/// never freed value of this same crate's type) if no copy has published one yet. Callers keep
/// the result in a `OnceLock` of their own, so each copy reads the environment once.
pub(crate) fn shared<T: Sync + 'static>(
    env: &str,
    create: impl FnOnce() -> &'static T,
) -> &'static T {
    let me = std::process::id();
    if let Ok(v) = std::env::var(env) {
        if let Some((pid, addr)) = v.split_once(':') {
            if pid.parse::<u32>() == Ok(me) {
                if let Ok(addr) = addr.parse::<usize>() {
                    // SAFETY: published below by this same process, pointing at a leaked (never
                    // freed) value created by `create` of a copy of this crate, whose type is `T`.
                    return unsafe { &*(addr as *const T) };
                }
            }
        }
    }
    let value = create();
    std::env::set_var(env, format!("{me}:{}", value as *const T as usize));
    value
}
