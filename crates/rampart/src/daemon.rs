//! Process housekeeping nutcracker does: `-d` daemonising (double fork, setsid, standard
//! streams to /dev/null, the working directory kept) and the `-p` pid file, which rampart
//! removes again on a clean stop.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Detaches from the terminal. Must run before any thread is started.
pub fn daemonize() -> io::Result<()> {
    for _ in 0..2 {
        // SAFETY: no other thread exists yet, so the child may keep running Rust code.
        match unsafe { libc::fork() } {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            _ => std::process::exit(0),
        }
        // SAFETY: setsid has no memory-safety preconditions.
        if unsafe { libc::setsid() } == -1
            && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
        {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: umask only changes the process's file-creation mask.
    unsafe { libc::umask(0) };
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: both descriptors are open; dup2 replaces the standard stream.
        if unsafe { libc::dup2(null.as_raw_fd(), target) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The pid file, removed when dropped.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the decimal pid with no newline, as nutcracker does.
    pub fn create(path: &Path) -> io::Result<PidFile> {
        fs::write(path, std::process::id().to_string())?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
