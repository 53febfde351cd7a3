//! Links GCC's unwinder into the binary instead of loading libgcc_s.so.
//!
//! Rust's standard library asks the linker for `-lgcc_s` (the unwinder
//! behind panics and backtraces) on linux-gnu. Loading that library on
//! every start costs a file to map and relocate, and its constructor runs
//! `cpuid` a dozen times, each a trap to the hypervisor in a VM: about
//! 0.1-0.18 ms of a process that runs before every start of the
//! application (measured interleaved: `--version` 1.41 -> 1.23 ms,
//! `validate` of the example 2.99 -> 2.89 ms). The same unwinder exists as
//! a static archive, `libgcc_eh.a` (what `+crt-static` builds link): a copy
//! named `libgcc_s.a` in a folder searched before the system's makes the
//! linker take it. Where the archive cannot be found (another C compiler,
//! cross-compiling), nothing changes and libgcc_s.so is used as before.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    let Some(archive) = static_unwinder() else { return };
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    let folder = out.join("static-unwinder");
    if std::fs::create_dir_all(&folder).is_err() || std::fs::copy(&archive, folder.join("libgcc_s.a")).is_err() {
        return;
    }
    println!("cargo:rustc-link-search=native={}", folder.display());
}

/// The C compiler's `libgcc_eh.a`, when it has one.
fn static_unwinder() -> Option<PathBuf> {
    let compiler = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(compiler).arg("-print-file-name=libgcc_eh.a").output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // Without the file, the compiler prints the bare name back.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
