//! Embeds the git revision the binary is built from (`--version`), as `CPM_FOCUS_GIT_REV`:
//! `CPM_FOCUS_GIT_REV` from the environment when set (packagers building from a tarball),
//! else the commit's short hash, else `unknown` when this is not a git checkout or git is
//! missing. The build never fails for want of git. (No `-dirty` mark: knowing it would mean
//! re-running this script on every edit of any file.)

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CPM_FOCUS_GIT_REV");
    let rev = match std::env::var("CPM_FOCUS_GIT_REV") {
        Ok(v) if !v.is_empty() => v,
        _ => revision().unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=CPM_FOCUS_GIT_REV={rev}");
}

fn revision() -> Option<String> {
    let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs. In a
    // worktree the git dir is not `.git`, so ask git where they are.
    if let Some(p) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={}", absolute(&p).display());
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
            println!("cargo:rerun-if-changed={}", absolute(&p).display());
        }
    }
    if let Some(p) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        println!("cargo:rerun-if-changed={}", absolute(&p).display());
    }
    Some(format!("git {hash}"))
}

fn absolute(p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|d| d.join(&path))
            .unwrap_or(path)
    }
}
