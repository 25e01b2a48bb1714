//! A command run's process: spawned as the leader of its own process group, with its output in
//! files and an empty stdin; waited for without a thread lost to polling; and ended as a group,
//! so that nothing it started outlives it. The [`Supervisor`] is shared by the runs of a sweep:
//! it enforces each run's timeout (TERM to the group, KILL after the grace), and on a stop
//! signal to sweep (SIGINT, SIGTERM, SIGHUP) ends every running group, at once on a second one.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the supervisor looks at deadlines and stop requests.
const TICK: Duration = Duration::from_millis(20);

/// Why sweep ended a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its timeout passed.
    Timeout,
    /// sweep was asked to stop.
    Stopped,
}

struct Live {
    deadline: Option<Instant>,
    /// When TERM was sent, and why.
    termed: Option<(Instant, Ended)>,
    grace: Duration,
}

/// The live process groups of a sweep, their deadlines, and sweep's own stop requests.
#[derive(Default)]
pub struct Supervisor {
    live: Mutex<BTreeMap<i32, Live>>,
    /// The first stop signal sweep received (0: none).
    stop_signal: AtomicI32,
    /// A second stop signal: KILL every group now.
    kill_now: AtomicBool,
    /// sweep stopped itself (`fail_fast`): end every run as for a stop signal.
    aborted: AtomicBool,
    finished: AtomicBool,
}

/// The supervisor of the runs alive now, if any: where sweep's stop signals go.
static ACTIVE: Mutex<Option<Arc<Supervisor>>> = Mutex::new(None);

/// Routes SIGINT, SIGTERM and SIGHUP, once per process: to the active supervisor while runs are
/// alive; otherwise the process ends with 128 + N, as the default action would (a handler, once
/// installed, cannot be removed: signal-hook would leave the signal ignored).
fn route_signals() -> std::io::Result<()> {
    static ROUTED: OnceLock<()> = OnceLock::new();
    if ROUTED.get().is_some() {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    std::thread::Builder::new()
        .name("sweep-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match ACTIVE.lock().expect("not poisoned").as_ref() {
                    Some(supervisor) => supervisor.stop(signal),
                    None => std::process::exit(128 + signal),
                }
            }
        })?;
    let _ = ROUTED.set(());
    Ok(())
}

impl Supervisor {
    /// A supervisor with its watching thread, and sweep's SIGINT, SIGTERM and SIGHUP routed to
    /// it for as long as it lives.
    pub fn start() -> std::io::Result<Arc<Supervisor>> {
        let supervisor = Arc::new(Supervisor::default());
        let watched = Arc::clone(&supervisor);
        std::thread::Builder::new()
            .name("sweep-supervisor".into())
            .spawn(move || watched.watch())?;
        route_signals()?;
        *ACTIVE.lock().expect("not poisoned") = Some(Arc::clone(&supervisor));
        Ok(supervisor)
    }

    /// Asks every run to stop (the first call), or to die now (the second).
    pub fn stop(&self, signal: i32) {
        if self
            .stop_signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.kill_now.store(true, Ordering::SeqCst);
        }
    }

    /// Stops the sweep without a signal (`fail_fast`): the running groups are ended as on a
    /// first stop signal.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether the runs are being stopped (a stop signal, or an abort): no run is launched and
    /// none that ends is saved.
    pub fn stopping(&self) -> bool {
        self.stop_signal().is_some() || self.aborted.load(Ordering::SeqCst)
    }

    /// The first stop signal received, if any.
    pub fn stop_signal(&self) -> Option<i32> {
        match self.stop_signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Ends the watching thread; a stop signal from now on ends sweep as its default action
    /// would (the runs are over).
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        *ACTIVE.lock().expect("not poisoned") = None;
    }

    fn watch(&self) {
        while !self.finished.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            let stopping = self.stopping();
            let kill_now = self.kill_now.load(Ordering::SeqCst);
            let now = Instant::now();
            let mut live = self.live.lock().expect("not poisoned");
            for (&group, run) in live.iter_mut() {
                if run.termed.is_none() {
                    let why = if stopping {
                        Some(Ended::Stopped)
                    } else if run.deadline.is_some_and(|d| now >= d) {
                        Some(Ended::Timeout)
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        signal_group(group, libc::SIGTERM);
                        run.termed = Some((now, why));
                    }
                }
                if let Some((at, _)) = run.termed {
                    if kill_now || now.duration_since(at) >= run.grace {
                        signal_group(group, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

/// How a run's process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// Whether sweep ended it, and why.
    pub ended_by_sweep: Option<Ended>,
}

impl Exit {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

/// Spawns `argv` in `workdir` as the leader of a new process group, with stdout and stderr
/// appended to the files given and stdin empty. An executable that is still open for writing
/// somewhere (ETXTBSY: a script just written, while another thread of the writing process
/// forked and had not yet exec'd) is tried again a few times before the run fails.
pub fn spawn(
    argv: &[String],
    workdir: &Path,
    env: &[(String, String)],
    stdout: &Path,
    stderr: &Path,
) -> std::io::Result<Child> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    };
    let mut tries = 0;
    loop {
        let spawned = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(workdir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(open(stdout)?))
            .stderr(Stdio::from(open(stderr)?))
            .process_group(0)
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * tries));
            }
            other => return other,
        }
    }
}

/// Waits for `child` (registered with `supervisor` under `timeout`) and reaps it, then ends
/// whatever of its group is left (TERM, KILL after `grace`).
///
/// The group is looked for after the leader is reaped: a group id cannot be given to a new
/// process while any member of the group lives, and once the group is empty it could be only
/// after the kernel has handed out every other process id (`/proc/sys/kernel/pid_max`, 32,768
/// or more) in the microseconds before the check, so `killpg` reaches this run's processes and no
/// others. (Scanning `/proc` for the group instead cost a fifth of a tiny run's time.)
pub fn wait(
    supervisor: &Supervisor,
    mut child: Child,
    timeout: Option<Duration>,
    grace: Duration,
) -> std::io::Result<Exit> {
    let group = child.id() as i32;
    supervisor.live.lock().expect("not poisoned").insert(
        group,
        Live {
            deadline: timeout.map(|t| Instant::now() + t),
            termed: None,
            grace,
        },
    );
    // A stop that came between the spawn and the registration.
    if supervisor.stopping() {
        signal_group(group, libc::SIGTERM);
    }
    let status = child.wait();
    let run = supervisor.live.lock().expect("not poisoned").remove(&group);
    let ended_by_sweep = run.and_then(|r| r.termed).map(|(_, why)| why);
    end_leftovers(group, grace);
    Ok(Exit {
        status: status?,
        ended_by_sweep,
    })
}

/// TERMs the processes left in `group` (its leader has been reaped), KILLs any left after
/// `grace`, and waits until none is left.
fn end_leftovers(group: i32, grace: Duration) {
    if !group_alive(group) {
        return;
    }
    signal_group(group, libc::SIGTERM);
    let start = Instant::now();
    while group_alive(group) {
        if start.elapsed() >= grace {
            signal_group(group, libc::SIGKILL);
        }
        std::thread::sleep(TICK);
    }
}

/// Whether any process is left in `group`.
fn group_alive(group: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists; nothing is sent.
    unsafe { libc::killpg(group, 0) == 0 }
}

/// Sends `signal` to every process of `group` (no error when none is left).
fn signal_group(group: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH, ignored.
    unsafe {
        libc::killpg(group, signal);
    }
}
