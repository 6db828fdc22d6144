//! Parking idle connections (MQTT over TCP, and over TLS with rustls's state kept). An idle
//! connection's task ends and its socket moves from tokio's reactor to the parker's own epoll
//! set; what the connection needs to go on is kept in a compact [`Parked`] record (a plain TCP
//! connection then costs about a tenth of a live one). Readable data or a hang-up, a message queued for its session, a kick (takeover,
//! revocation, administrative disconnect), its keep-alive deadline or the server stopping
//! resumes it as a task, exactly where it left off.

use super::sock::{Parkable, ParkedIo, Sock};
use super::{Conn, Held, Stream, cast};
use crate::BrokerInner;
use crate::session::Session;
use slab::Slab;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio_rustls::server::TlsStream;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

/// Events read from the parker's epoll set per call.
const EVENTS: usize = 1024;
/// How often parked connections' keep-alive deadlines are checked.
const SWEEP: Duration = Duration::from_secs(1);

/// One listener's parked connections and the task that resumes them.
pub(crate) struct Parker {
    broker: Arc<BrokerInner>,
    registry: mio::Registry,
    slots: Mutex<Slots>,
    /// Keys whose sessions asked for their connection back (see [`Unpark::wake`]).
    woken: Mutex<Vec<usize>>,
    wake: Notify,
    shutdown: watch::Receiver<bool>,
    /// Held by every resumed connection's task, so the listener's drain waits for them.
    done: mpsc::Sender<()>,
    idle_after: Duration,
    /// The listener's connection limit (parked connections' permits are forgotten and given
    /// back when they end).
    limit: Arc<Semaphore>,
}

struct Slots {
    parked: Slab<Box<Parked>>,
    /// The listener is stopping: nothing parks any more.
    closed: bool,
}

/// What an idle connection keeps while it has no task.
struct Parked {
    io: ParkedIo,
    idle: super::Idle,
}

/// Kept in a parked connection's session attachment: waking it resumes the connection.
#[derive(Clone)]
pub(crate) struct Unpark {
    parker: Arc<Parker>,
    key: usize,
}

impl std::fmt::Debug for Unpark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unpark({})", self.key)
    }
}

impl Unpark {
    /// Asks the parker to resume this connection (a stale key at worst resumes another idle
    /// connection, which parks again).
    pub(crate) fn wake(&self) {
        lock(&self.parker.woken).push(self.key);
        self.parker.wake.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Parker {
    /// Starts the parker of one listener (its task ends when `shutdown` turns true).
    pub(crate) fn start(
        broker: Arc<BrokerInner>,
        idle_after: Duration,
        shutdown: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
        limit: Arc<Semaphore>,
    ) -> std::io::Result<Arc<Parker>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // SAFETY: the `mio::Poll` owns its epoll descriptor and only closes it when dropped,
        // which the `AsyncFd` owning it does after deregistering it.
        let fd = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }?;
        let slots = Mutex::new(Slots { parked: Slab::new(), closed: false });
        let parker = Arc::new(Parker { broker, registry, slots, woken: Mutex::default(), wake: Notify::new(), shutdown, done, idle_after, limit });
        tokio::spawn(parker.clone().run(fd));
        Ok(parker)
    }

    /// Returns the permit a parked connection forgot to the listener's limit.
    pub(super) fn give_back_permit(&self) {
        self.limit.add_permits(1);
    }

    /// How long a connection stays idle before it parks.
    pub(crate) fn idle_after(&self) -> Duration {
        self.idle_after
    }

    async fn run(self: Arc<Self>, mut poll: AsyncFd<mio::Poll>) {
        // However this task ends (shutdown, or a panic), nothing stays parked without it.
        let _closing = CloseOnDrop(self.clone());
        let mut events = mio::Events::with_capacity(EVENTS);
        let mut shutdown = self.shutdown.clone();
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                // A dropped sender means the listener is gone: stop as for shutdown.
                changed = shutdown.changed() => if changed.is_err() { break },
                ready = poll.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    loop {
                        if let Err(e) = guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                            tracing::warn!(error = %e, "reading parked connections' events failed");
                            guard.clear_ready();
                            break;
                        }
                        if events.is_empty() {
                            guard.clear_ready();
                            break;
                        }
                        for e in events.iter() {
                            self.resume(e.token().0);
                        }
                    }
                }
                _ = self.wake.notified() => {
                    let keys = std::mem::take(&mut *lock(&self.woken));
                    for key in keys {
                        self.resume(key);
                    }
                }
                _ = sweep.tick() => self.sweep(),
            }
        }
    }

    /// Stops parking and resumes every parked connection: each sees the shutdown (or finds its
    /// socket) and ends through the normal close.
    fn close_all(self: &Arc<Self>) {
        let keys: Vec<usize> = {
            let mut slots = lock(&self.slots);
            slots.closed = true;
            slots.parked.iter().map(|(k, _)| k).collect()
        };
        for key in keys {
            self.resume(key);
        }
    }

    /// Resumes the connections whose keep-alive ran out (they then close with 0x8D).
    fn sweep(self: &Arc<Self>) {
        let now = crate::session::ticks_ms();
        let due: Vec<usize> = lock(&self.slots).parked.iter().filter(|(_, p)| p.idle.keep_alive_due(now)).map(|(k, _)| k).collect();
        for key in due {
            self.resume(key);
        }
    }

    /// Parks an idle connection, or gives it a task again at once when it turns out to have
    /// something to do after all (a message or a kick came in, the listener is stopping).
    /// `Err` gives back a connection whose stream cannot park.
    pub(super) fn park<S: Stream>(self: &Arc<Self>, conn: Conn<S>, held: Held) -> Result<(), Box<(Conn<S>, Held)>> {
        match cast::<Conn<S>, Conn<Sock>>(conn) {
            Ok(tcp) => self.park_as(tcp, held),
            Err(conn) => match cast::<Conn<S>, Conn<TlsStream<Sock>>>(conn) {
                Ok(tls) => self.park_as(tls, held),
                Err(other) => return Err(Box::new((other, held))),
            },
        }
        Ok(())
    }

    fn park_as<T: Parkable>(self: &Arc<Self>, conn: Conn<T>, mut held: Held) {
        let (io, mut idle) = match conn.into_idle() {
            Ok(x) => x,
            Err(conn) => return self.spawn_live(*conn, held),
        };
        // The record keeps no permit: it is forgotten now and given back when the connection
        // ends (the listener's count of connections stays the same).
        idle.owes_permit = match held.permit.take() {
            Some(p) => {
                p.forget();
                true
            }
            None => held.owes_permit,
        };
        held.owes_permit = false;
        drop(held);
        let mut slots = lock(&self.slots);
        let closed = slots.closed || *self.shutdown.borrow();
        let entry = slots.parked.vacant_entry();
        let key = entry.key();
        // Under the session lock: nothing queued and still ours; from then on whoever queues a
        // message or kicks the connection finds the key and wakes it. Registering reports
        // readiness that is already there, so bytes that came in since the last read are not
        // missed; an event can only be handled once the entry is in (the slots are locked).
        let unpark = Unpark { parker: self.clone(), key };
        let mut parked = !closed && mark_parked(&idle.session, idle.generation, Some(unpark));
        if parked && let Err(e) = io.fd().map_or(Err(std::io::ErrorKind::NotConnected.into()), |fd| {
            self.registry.register(&mut mio::unix::SourceFd(&fd), mio::Token(key), mio::Interest::READABLE)
        }) {
            tracing::warn!(error = %e, "parking a connection failed");
            mark_parked(&idle.session, idle.generation, None);
            parked = false;
        }
        if parked {
            entry.insert(Box::new(Parked { io, idle }));
            self.broker.metrics.connections_parked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            drop(slots);
            self.spawn_resumed(io, idle);
        }
    }

    /// Gives a parked connection a task again (nothing happens if `key` is no longer parked).
    fn resume(self: &Arc<Self>, key: usize) {
        let Some(parked) = lock(&self.slots).parked.try_remove(key) else { return };
        let Parked { io, idle } = *parked;
        self.broker.metrics.connections_parked.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(fd) = io.fd() {
            let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        }
        mark_parked(&idle.session, idle.generation, None);
        self.spawn_resumed(io, idle);
    }

    /// A task for a parked record's connection.
    fn spawn_resumed(self: &Arc<Self>, io: ParkedIo, idle: super::Idle) {
        let held = Held { shutdown: self.shutdown.clone(), permit: None, parker: Some(self.clone()), owes_permit: idle.owes_permit };
        let broker = self.broker.clone();
        match io {
            ParkedIo::Tcp(s) => self.spawn_live(Conn::from_idle(idle, Sock::Parked(s), broker, Some(self.idle_after)), held),
            ParkedIo::Tls(t) => self.spawn_live(Conn::from_idle(idle, *t, broker, Some(self.idle_after)), held),
        }
    }

    /// Runs a connection in a task of its own, counted in the listener's drain.
    fn spawn_live<T: Parkable>(&self, conn: Conn<T>, held: Held) {
        let done = self.done.clone();
        tokio::spawn(async move {
            Box::pin(super::live(conn, held)).await;
            drop(done);
        });
    }
}

/// Runs [`Parker::close_all`] when the parker's task ends.
struct CloseOnDrop(Arc<Parker>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        // Resuming needs the runtime (a task ending with it has none: then the records just go).
        if tokio::runtime::Handle::try_current().is_ok() {
            self.0.close_all();
        } else {
            lock(&self.0.slots).closed = true;
        }
    }
}

/// Records (or clears) where the connection `generation` of `session` is parked. False, when
/// parking, if the session has moved on (taken over, ended, kicked) or has messages waiting.
fn mark_parked(session: &Session, generation: u64, parked: Option<Unpark>) -> bool {
    let mut st = session.lock();
    let parking = parked.is_some();
    let refuse = parking && !st.idle_for(generation);
    match st.attached.as_mut() {
        Some(a) if a.generation == generation && !refuse => {
            a.parked = parked;
            if parking {
                st.release_empty_queues();
            }
            true
        }
        _ => false,
    }
}
