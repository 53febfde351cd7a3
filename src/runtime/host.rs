//! The name of this host, to tell a lock written here (`PID hostname`, as
//! git's `gc.pid` does) from one written by another machine on a shared
//! file system.

/// This host's name as `gethostname(2)` reports it, or `None` if it cannot
/// be read or is not UTF-8.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end]).ok().map(str::to_string).filter(|s| !s.is_empty())
}

/// Whether `named` designates the host called `local`: equal ignoring case,
/// or equal short names (`build1` and `build1.example.com`).
pub fn same_host(named: &str, local: &str) -> bool {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    named.eq_ignore_ascii_case(local) || short(named) == short(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_hostname_is_readable() {
        let name = hostname().expect("a hostname");
        assert!(same_host(&name, &name));
    }

    #[test]
    fn short_and_full_names_designate_the_same_host() {
        assert!(same_host("build1.example.com", "build1"));
        assert!(same_host("BUILD1", "build1"));
        assert!(!same_host("build2", "build1"));
    }
}
