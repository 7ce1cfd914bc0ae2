//! Dropping root after the sockets are bound (`user = "impostor"`).

use std::ffi::CString;

/// The uid and gid of a user name.
fn lookup(user: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let name = CString::new(user).map_err(|_| format!("user: {user:?} is not a user name"))?;
    // SAFETY: getpwnam returns null or a pointer to static storage read at once; single-threaded use at start.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("user: no such user {user:?}"));
        }
        Ok(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// Whether a group name exists.
fn group_exists(group: &str) -> Result<bool, String> {
    let name = CString::new(group).map_err(|_| format!("milter.socket_group: {group:?} is not a group name"))?;
    // SAFETY: getgrnam returns null or a pointer to static storage; only its nullness is read.
    Ok(unsafe { !libc::getgrnam(name.as_ptr()).is_null() })
}

/// Checks that the configured `user` and `milter.socket_group` exist on this
/// host (`config check`, and `serve` before it binds): otherwise the daemon
/// would log "listening" and then die dropping privileges or owning its socket.
/// The error names the key and the value.
pub fn check_accounts(user: &str, socket_group: &str) -> Result<(), String> {
    if !user.is_empty() {
        lookup(user)?;
    }
    if !socket_group.is_empty() && !group_exists(socket_group)? {
        return Err(format!("milter.socket_group: no such group {socket_group:?}"));
    }
    Ok(())
}

/// Switches to `user` (and its primary group) if running as root. With no
/// user configured, running as root only earns a warning. `own` are paths
/// (the unix socket) handed to the new user so it can remove them at exit.
pub fn drop_privileges(user: &str, own: &[&std::path::Path]) -> Result<(), String> {
    // SAFETY: plain getters.
    let euid = unsafe { libc::geteuid() };
    if user.is_empty() {
        if euid == 0 {
            tracing::warn!("running as root: set `user = \"impostor\"` (an unprivileged account) to drop privileges after binding");
        }
        return Ok(());
    }
    let (uid, gid) = lookup(user)?;
    if euid == uid {
        return Ok(());
    }
    if euid != 0 {
        return Err(format!("user = {user:?}: cannot switch user without root (running as uid {euid})"));
    }
    for p in own {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| "socket path".to_string())?;
        // SAFETY: valid path; keep the group (-1) chosen by milter.socket_group.
        unsafe { libc::chown(c.as_ptr(), uid, u32::MAX) };
    }
    // SAFETY: standard order: supplementary groups, gid, then uid. glibc applies
    // set*id to every thread of the process.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!("setgid({gid}): {}", std::io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!("setuid({uid}): {}", std::io::Error::last_os_error()));
        }
        if libc::setuid(0) == 0 {
            return Err("privileges could be regained after setuid; refusing to run".into());
        }
    }
    tracing::info!(user, uid, gid, "dropped privileges");
    Ok(())
}
