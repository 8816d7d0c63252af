//! A UDP socket whose datagrams cross into JavaScript in batches: a thread of
//! its own receives with `recvmmsg` (up to `batch` datagrams per system call)
//! and hands each batch to JS in one call, as one buffer of datagram bytes and
//! one array of `u32` words per datagram (offset, length, peer; the layout is
//! `opensynaptic_contract::udp_batch`); sends go out the same way with
//! `sendmmsg`, one call per batch of queued frames. `node:dgram` makes one JS
//! call and one system call per datagram, which caps it near 130k datagrams/s
//! on one core; batching is what lets a receiver go well past that.
//!
//! Bounds: the receive thread keeps at most `max_queued` batches waiting for
//! the JS thread; past that it stops reading and the kernel's receive buffer
//! fills and drops, which the kernel counts (`SO_RXQ_OVFL`) and each batch
//! reports. `close` (and drop) stops the thread (woken through an eventfd),
//! joins it and closes the socket; batches already queued still reach JS,
//! which ignores them once closed.
//!
//! Linux only (`recvmmsg`/`sendmmsg`); elsewhere the constructor throws
//! `OSN_UNSUPPORTED` and the JS driver uses `node:dgram`.

use napi::bindgen_prelude::{FnArgs, Function, Uint32Array, Uint8Array};
use napi_derive::napi;
use opensynaptic_contract::native_error;

use crate::{fail, Result};

/// Socket options of [`NativeUdp`] (as `node:dgram`'s `createSocket` takes them).
#[napi(object)]
pub struct NativeUdpOptions {
    pub reuse_addr: Option<bool>,
    pub ipv6_only: Option<bool>,
    pub recv_buffer_size: Option<u32>,
    pub send_buffer_size: Option<u32>,
    /// Send runs of equal-size datagrams to one peer as one GSO send (default true).
    pub gso: Option<bool>,
}

/// The bound address.
#[napi(object)]
pub struct NativeUdpAddress {
    pub address: String,
    pub port: u32,
    /// A `UdpFamily`.
    pub family: u32,
}

/// A bound UDP socket with batched receive and send.
#[napi]
pub struct NativeUdp {
    inner: imp::Socket,
}

#[napi]
impl NativeUdp {
    /// Binds `host` (an IP literal) and `port`; `family` is a `UdpFamily`.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        host: String,
        port: u32,
        family: u32,
        options: Option<NativeUdpOptions>,
    ) -> Result<Self> {
        Ok(Self {
            inner: imp::Socket::bind(&host, port, family, options)?,
        })
    }

    /// The bound address and port.
    #[napi(catch_unwind)]
    pub fn local_address(&self) -> Result<NativeUdpAddress> {
        self.inner.local_address()
    }

    /// Starts the receive thread: `callback(data, meta, kernelDrops)` per batch,
    /// `kernelDrops` the socket's running count of datagrams the kernel dropped
    /// for want of buffer space. Datagrams over `max_frame_bytes` come flagged
    /// `TRUNCATED` with no bytes. At most `batch` datagrams per system call,
    /// `max_queued` batches waiting for JS, and, while JS is busy, up to
    /// `gather` datagrams (and `GATHER_BYTES`) read into the next batch.
    #[napi(catch_unwind)]
    pub fn start_receive(
        &mut self,
        callback: Function<FnArgs<(Uint8Array, Uint32Array, u32)>, ()>,
        max_frame_bytes: u32,
        batch: u32,
        max_queued: u32,
        gather: u32,
    ) -> Result<()> {
        self.inner
            .start_receive(callback, max_frame_bytes, batch, max_queued, gather)
    }

    /// Sends datagrams `start..start + count` of `meta` (bytes in `data`, at
    /// most `UdpBatch.MAX_BATCH`) with one `sendmmsg`; returns how many the
    /// kernel took, in order (fewer, or 0, when its send buffer is full: send
    /// the rest later). `OSN_IO` means datagram `start` was refused and none
    /// was sent.
    #[napi(catch_unwind)]
    pub fn send_batch(&self, data: &[u8], meta: &[u32], start: u32, count: u32) -> Result<u32> {
        self.inner.send_batch(data, meta, start, count)
    }

    /// Stops the receive thread, joins it and closes the socket; idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.inner.close();
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub struct Socket;

    fn unsupported<T>() -> Result<T> {
        Err(fail(
            native_error::UNSUPPORTED,
            "the native UDP socket needs recvmmsg/sendmmsg (Linux)",
        ))
    }

    impl Socket {
        pub fn bind(_: &str, _: u32, _: u32, _: Option<NativeUdpOptions>) -> Result<Self> {
            unsupported()
        }
        pub fn local_address(&self) -> Result<NativeUdpAddress> {
            unsupported()
        }
        pub fn start_receive(
            &mut self,
            _: Function<FnArgs<(Uint8Array, Uint32Array, u32)>, ()>,
            _: u32,
            _: u32,
            _: u32,
            _: u32,
        ) -> Result<()> {
            unsupported()
        }
        pub fn send_batch(&self, _: &[u8], _: &[u32], _: u32, _: u32) -> Result<u32> {
            unsupported()
        }
        pub fn close(&mut self) {}
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use napi::threadsafe_function::{
        ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
    };
    use napi::Status;
    use opensynaptic_contract::{udp_batch as ub, udp_family};
    use std::cell::Cell;
    use std::mem::{size_of, zeroed};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;

    const WORDS: usize = ub::COUNT as usize;
    /// Control-message space per datagram: one `SO_RXQ_OVFL` (a u32) with room to spare.
    const CTRL_WORDS: usize = 8;

    type Tsfn =
        ThreadsafeFunction<Batch, (), FnArgs<(Uint8Array, Uint32Array, u32)>, Status, false>;

    /// One receive batch on its way to JS.
    pub struct Batch {
        data: Vec<u8>,
        meta: Vec<u32>,
        drops: u32,
    }

    /// Batches handed to JS and not yet taken by it.
    struct Flow {
        queued: Mutex<u32>,
        room: Condvar,
    }

    struct Receiver {
        stop: Arc<AtomicBool>,
        flow: Arc<Flow>,
        wake: OwnedFd,
        thread: JoinHandle<()>,
    }

    pub struct Socket {
        fd: Option<OwnedFd>,
        family: u32,
        receiver: Option<Receiver>,
        /// The kernel hands over runs of datagrams coalesced (UDP_GRO): receive slots must hold 64 KiB.
        gro: bool,
        /// Runs of equal-size datagrams to one destination go out as one GSO send (UDP_SEGMENT),
        /// until the kernel refuses one (an old kernel, a route whose MTU is below the size).
        gso: Cell<bool>,
    }

    /// `linux/udp.h`: send a buffer as segments of this size; receive coalesced runs.
    const UDP_SEGMENT: i32 = 103;
    const UDP_GRO: i32 = 104;
    /// Segments one GSO send may carry (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
    const GSO_MAX_SEGMENTS: usize = 64;
    /// Bytes one GSO send may carry (the datagram limit applies to the whole run).
    const GSO_MAX_BYTES: usize = 65_000;
    /// Largest datagram payload: the receive slot when the kernel coalesces.
    const MAX_DATAGRAM: usize = 65_535;

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// The platform's name of an error number, as Node names it (`EADDRINUSE`).
    fn errno_name(e: i32) -> String {
        let name = match e {
            libc::EADDRINUSE => "EADDRINUSE",
            libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            libc::EACCES => "EACCES",
            libc::EPERM => "EPERM",
            libc::EINVAL => "EINVAL",
            libc::EMSGSIZE => "EMSGSIZE",
            libc::ENETUNREACH => "ENETUNREACH",
            libc::EHOSTUNREACH => "EHOSTUNREACH",
            libc::ECONNREFUSED => "ECONNREFUSED",
            libc::EAFNOSUPPORT => "EAFNOSUPPORT",
            libc::ENOBUFS => "ENOBUFS",
            libc::ENOMEM => "ENOMEM",
            libc::EMFILE => "EMFILE",
            libc::ENFILE => "ENFILE",
            libc::EBADF => "EBADF",
            libc::EDESTADDRREQ => "EDESTADDRREQ",
            _ => return format!("E{e}"),
        };
        name.to_string()
    }

    fn io_error(what: impl std::fmt::Display) -> crate::Error {
        let e = errno();
        fail(
            native_error::IO,
            format_args!(
                "{}: {what} ({})",
                errno_name(e),
                std::io::Error::from_raw_os_error(e)
            ),
        )
    }

    fn closed() -> crate::Error {
        fail(native_error::CLOSED, "the socket is closed")
    }

    fn set_int(fd: RawFd, level: i32, name: i32, value: i32, what: &str) -> Result<()> {
        // SAFETY: a valid fd and a pointer to an i32 of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                size_of::<i32>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io_error(format_args!("setsockopt {what}")));
        }
        Ok(())
    }

    /// `ip`:`port` as a socket address; its length.
    pub(super) fn sockaddr(
        ip: IpAddr,
        port: u16,
        v6_socket: bool,
        out: &mut libc::sockaddr_storage,
    ) -> libc::socklen_t {
        let ip = match ip {
            IpAddr::V4(a) if v6_socket => IpAddr::V6(a.to_ipv6_mapped()),
            other => other,
        };
        match ip {
            IpAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                let sin = unsafe {
                    &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = port.to_be();
                sin.sin_addr = libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            IpAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe {
                    &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = port.to_be();
                sin6.sin6_addr = libc::in6_addr {
                    s6_addr: a.octets(),
                };
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    /// The address in `sa` as the batch's words (`PORT`, `FAMILY`, `ADDRESS`..).
    pub(super) fn peer_words(sa: &libc::sockaddr_storage, words: &mut [u32]) {
        match i32::from(sa.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says this is a sockaddr_in.
                let sin =
                    unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                words[ub::PORT as usize] = u32::from(u16::from_be(sin.sin_port));
                words[ub::FAMILY as usize] = udp_family::IPV4;
                words[ub::ADDRESS as usize] = u32::from_be(sin.sin_addr.s_addr);
            }
            libc::AF_INET6 => {
                // SAFETY: the family says this is a sockaddr_in6.
                let sin6 =
                    unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                words[ub::PORT as usize] = u32::from(u16::from_be(sin6.sin6_port));
                words[ub::FAMILY as usize] = udp_family::IPV6;
                let o = sin6.sin6_addr.s6_addr;
                for k in 0..4 {
                    words[ub::ADDRESS as usize + k] =
                        u32::from_be_bytes([o[4 * k], o[4 * k + 1], o[4 * k + 2], o[4 * k + 3]]);
                }
            }
            _ => {}
        }
    }

    pub(super) fn words_ip(words: &[u32]) -> Option<IpAddr> {
        let a = ub::ADDRESS as usize;
        match words[ub::FAMILY as usize] {
            udp_family::IPV4 => Some(IpAddr::V4(Ipv4Addr::from(words[a]))),
            udp_family::IPV6 => {
                let mut o = [0u8; 16];
                for k in 0..4 {
                    o[4 * k..4 * k + 4].copy_from_slice(&words[a + k].to_be_bytes());
                }
                Some(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => None,
        }
    }

    impl Socket {
        pub fn bind(
            host: &str,
            port: u32,
            family: u32,
            options: Option<NativeUdpOptions>,
        ) -> Result<Self> {
            let ip: IpAddr = host.parse().map_err(|_| {
                crate::arg_error(format_args!("host {host:?} is not an IP address"))
            })?;
            let v6 = match family {
                udp_family::IPV4 => false,
                udp_family::IPV6 => true,
                _ => {
                    return Err(crate::arg_error(format_args!(
                        "family {family} is not 4 or 6"
                    )))
                }
            };
            if ip.is_ipv6() && !v6 {
                return Err(crate::arg_error(format_args!(
                    "host {host} is IPv6 on an IPv4 socket"
                )));
            }
            let port = u16::try_from(port)
                .map_err(|_| crate::arg_error(format_args!("port {port} is not in 0..=65535")))?;
            let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
            // SAFETY: plain socket creation; the fd is owned at once.
            let raw = unsafe {
                libc::socket(
                    domain,
                    libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    0,
                )
            };
            if raw < 0 {
                return Err(io_error("socket"));
            }
            // SAFETY: `raw` is a new fd nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let o = options.unwrap_or(NativeUdpOptions {
                reuse_addr: None,
                ipv6_only: None,
                recv_buffer_size: None,
                send_buffer_size: None,
                gso: None,
            });
            if o.reuse_addr == Some(true) {
                set_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR")?;
            }
            if v6 {
                set_int(
                    raw,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    i32::from(o.ipv6_only == Some(true)),
                    "IPV6_V6ONLY",
                )?;
            }
            if let Some(n) = o.recv_buffer_size {
                set_int(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    n.min(i32::MAX as u32) as i32,
                    "SO_RCVBUF",
                )?;
            }
            if let Some(n) = o.send_buffer_size {
                set_int(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    n.min(i32::MAX as u32) as i32,
                    "SO_SNDBUF",
                )?;
            }
            // Each received datagram then carries the kernel's count of drops for want of buffer.
            set_int(raw, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1, "SO_RXQ_OVFL")?;
            // Coalesced receive of runs from one sender (kernels from 5.0; without it, one
            // datagram per slot as before).
            let gro = set_int(raw, libc::SOL_UDP, UDP_GRO, 1, "UDP_GRO").is_ok();
            // SAFETY: zeroed sockaddr_storage is valid; filled by `sockaddr`.
            let mut sa: libc::sockaddr_storage = unsafe { zeroed() };
            let len = sockaddr(ip, port, v6, &mut sa);
            // SAFETY: `sa` holds `len` valid bytes of a socket address.
            if unsafe { libc::bind(raw, (&sa as *const libc::sockaddr_storage).cast(), len) } < 0 {
                return Err(io_error(format_args!("bind {host}:{port}")));
            }
            Ok(Self {
                fd: Some(fd),
                family,
                receiver: None,
                gro,
                gso: Cell::new(o.gso != Some(false)),
            })
        }

        fn raw(&self) -> Result<RawFd> {
            self.fd.as_ref().map(AsRawFd::as_raw_fd).ok_or_else(closed)
        }

        pub fn local_address(&self) -> Result<NativeUdpAddress> {
            let fd = self.raw()?;
            // SAFETY: getsockname writes at most `len` bytes into `sa`.
            let mut sa: libc::sockaddr_storage = unsafe { zeroed() };
            let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if unsafe {
                libc::getsockname(
                    fd,
                    (&mut sa as *mut libc::sockaddr_storage).cast(),
                    &mut len,
                )
            } < 0
            {
                return Err(io_error("getsockname"));
            }
            let mut words = [0u32; WORDS];
            peer_words(&sa, &mut words);
            let ip = words_ip(&words)
                .ok_or_else(|| fail(native_error::CONTRACT, "unknown address family"))?;
            Ok(NativeUdpAddress {
                address: ip.to_string(),
                port: words[ub::PORT as usize],
                family: if ip.is_ipv6() {
                    udp_family::IPV6
                } else {
                    udp_family::IPV4
                },
            })
        }

        pub fn start_receive(
            &mut self,
            callback: Function<FnArgs<(Uint8Array, Uint32Array, u32)>, ()>,
            max_frame_bytes: u32,
            batch: u32,
            max_queued: u32,
            gather: u32,
        ) -> Result<()> {
            let fd = self.raw()?;
            if self.receiver.is_some() {
                return Err(crate::arg_error("the socket is already receiving"));
            }
            if !(1..=65_535).contains(&max_frame_bytes)
                || !(1..=ub::MAX_BATCH).contains(&batch)
                || max_queued == 0
                || !(batch..=MAX_GATHER).contains(&gather)
            {
                return Err(crate::arg_error(format_args!(
                    "max_frame_bytes {max_frame_bytes} (1..=65535), batch {batch} (1..={}), max_queued {max_queued} (>= 1), gather {gather} (batch..={MAX_GATHER})",
                    ub::MAX_BATCH
                )));
            }
            // SAFETY: plain eventfd creation, owned at once.
            let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if wake < 0 {
                return Err(io_error("eventfd"));
            }
            // SAFETY: `wake` is a new fd nobody else owns.
            let wake = unsafe { OwnedFd::from_raw_fd(wake) };
            let flow = Arc::new(Flow {
                queued: Mutex::new(0),
                room: Condvar::new(),
            });
            let stop = Arc::new(AtomicBool::new(false));
            let taken = Arc::clone(&flow);
            let tsfn: Tsfn = callback
                .build_threadsafe_function::<Batch>()
                .callee_handled::<false>()
                .error_status::<Status>()
                .build_callback(move |ctx: ThreadsafeCallContext<Batch>| {
                    // JS takes the batch now: the thread may read another.
                    {
                        let mut q = taken.queued.lock().unwrap_or_else(|p| p.into_inner());
                        *q = q.saturating_sub(1);
                    }
                    taken.room.notify_one();
                    let b = ctx.value;
                    Ok(FnArgs::from((
                        Uint8Array::new(b.data),
                        Uint32Array::new(b.meta),
                        b.drops,
                    )))
                })
                .map_err(crate::napi_error)?;
            let loop_ = ReceiveLoop {
                fd,
                wake: wake.as_raw_fd(),
                stop: Arc::clone(&stop),
                flow: Arc::clone(&flow),
                // A coalesced run is up to 64 KiB whatever the frame limit (JS drops longer frames).
                slot: if self.gro {
                    MAX_DATAGRAM
                } else {
                    max_frame_bytes as usize
                },
                batch: batch as usize,
                max_queued,
                gather: gather as usize,
            };
            let thread = std::thread::Builder::new()
                .name("opensynaptic-udp".into())
                // Its buffers are on the heap: a small stack keeps many sockets cheap.
                .stack_size(128 * 1024)
                .spawn(move || loop_.run(tsfn))
                .map_err(|e| {
                    fail(
                        native_error::IO,
                        format_args!("EAGAIN: cannot start the receive thread ({e})"),
                    )
                })?;
            self.receiver = Some(Receiver {
                stop,
                flow,
                wake,
                thread,
            });
            Ok(())
        }

        pub fn send_batch(&self, data: &[u8], meta: &[u32], start: u32, count: u32) -> Result<u32> {
            let fd = self.raw()?;
            let (start, n) = (start as usize, count as usize);
            if !meta.len().is_multiple_of(WORDS)
                || start + n > meta.len() / WORDS
                || n > ub::MAX_BATCH as usize
            {
                return Err(crate::arg_error(format_args!(
                    "datagrams {start}..{} are not all in a meta array of {} words, or more than {}",
                    start + n,
                    meta.len(),
                    ub::MAX_BATCH
                )));
            }
            if n == 0 {
                return Ok(0);
            }
            let v6 = self.family == udp_family::IPV6;
            // Each record checked, its destination as a socket address.
            // SAFETY: zeroed socket addresses are valid; each is filled below.
            let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { zeroed() }; n];
            let mut spans: Vec<(usize, usize)> = Vec::with_capacity(n);
            for (j, name) in names.iter_mut().enumerate() {
                let i = start + j;
                let w = &meta[i * WORDS..][..WORDS];
                let (off, len) = (
                    w[ub::OFFSET as usize] as usize,
                    w[ub::LENGTH as usize] as usize,
                );
                if off.checked_add(len).is_none_or(|end| end > data.len()) {
                    return Err(crate::arg_error(format_args!(
                        "datagram {i} lies past the {}-byte data",
                        data.len()
                    )));
                }
                let ip = words_ip(w).ok_or_else(|| {
                    crate::arg_error(format_args!("datagram {i}: unknown family"))
                })?;
                if ip.is_ipv6() && !v6 {
                    return Err(crate::arg_error(format_args!(
                        "datagram {i}: an IPv6 destination on an IPv4 socket"
                    )));
                }
                let port = u16::try_from(w[ub::PORT as usize])
                    .map_err(|_| crate::arg_error(format_args!("datagram {i}: port past 65535")))?;
                sockaddr(ip, port, v6, name);
                spans.push((off, len));
            }
            let same_peer = |a: usize, b: usize| {
                let (x, y) = (
                    &meta[(start + a) * WORDS..][..WORDS],
                    &meta[(start + b) * WORDS..][..WORDS],
                );
                x[ub::PORT as usize..ub::FLAGS as usize] == y[ub::PORT as usize..ub::FLAGS as usize]
            };
            loop {
                // Runs of equal-size datagrams to one peer, contiguous in `data`, become one GSO
                // send: (first record, records, bytes, segment size).
                let gso = self.gso.get();
                let mut groups: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(n);
                let mut j = 0;
                while j < n {
                    let (off, len) = spans[j];
                    let mut k = j + 1;
                    let mut bytes = len;
                    if gso && len > 0 {
                        while k < n
                            && k - j < GSO_MAX_SEGMENTS
                            && spans[k].0 == off + bytes
                            && spans[k].1 > 0
                            && spans[k].1 <= len
                            && bytes + spans[k].1 <= GSO_MAX_BYTES
                            && same_peer(j, k)
                        {
                            bytes += spans[k].1;
                            k += 1;
                            // Only the last segment may be shorter.
                            if spans[k - 1].1 < len {
                                break;
                            }
                        }
                    }
                    groups.push((j, k - j, bytes, len));
                    j = k;
                }
                let g = groups.len();
                let mut iovs: Vec<libc::iovec> = Vec::with_capacity(g);
                // One UDP_SEGMENT control message per GSO send (a u16, in a u64-aligned buffer).
                let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
                let mut ctrl = vec![0u64; g * space.div_ceil(8)];
                // SAFETY: zeroed message headers are valid; each is filled below.
                let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; g];
                for &(first, _, bytes, _) in &groups {
                    // The kernel only reads through this pointer (sendmmsg).
                    iovs.push(libc::iovec {
                        iov_base: data[spans[first].0..].as_ptr() as *mut libc::c_void,
                        iov_len: bytes,
                    });
                }
                for (q, &(first, records, _, segment)) in groups.iter().enumerate() {
                    let h = &mut msgs[q].msg_hdr;
                    h.msg_name = (&mut names[first] as *mut libc::sockaddr_storage).cast();
                    h.msg_namelen = if i32::from(names[first].ss_family) == libc::AF_INET6 {
                        size_of::<libc::sockaddr_in6>() as libc::socklen_t
                    } else {
                        size_of::<libc::sockaddr_in>() as libc::socklen_t
                    };
                    h.msg_iov = &mut iovs[q];
                    h.msg_iovlen = 1;
                    if records > 1 {
                        let at = q * space.div_ceil(8);
                        h.msg_control = ctrl[at..].as_mut_ptr().cast();
                        h.msg_controllen = space;
                        // SAFETY: the control buffer holds `space` bytes for one cmsghdr and a u16.
                        unsafe {
                            let c = libc::CMSG_FIRSTHDR(h);
                            (*c).cmsg_level = libc::SOL_UDP;
                            (*c).cmsg_type = UDP_SEGMENT;
                            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                            std::ptr::write_unaligned(
                                libc::CMSG_DATA(c).cast::<u16>(),
                                segment as u16,
                            );
                        }
                    }
                }
                // SAFETY: `msgs` point into `names`, `iovs`, `ctrl` and `data`, all alive for the call.
                let r =
                    unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), g as u32, libc::MSG_DONTWAIT) };
                if r >= 0 {
                    return Ok(groups[..r as usize]
                        .iter()
                        .map(|&(_, records, _, _)| records as u32)
                        .sum());
                }
                match errno() {
                    libc::EINTR => continue,
                    // The send buffer is full: nothing sent, try again later.
                    libc::EAGAIN | libc::ENOBUFS => return Ok(0),
                    // A GSO send refused (a kernel without it, a route whose MTU is below the
                    // segment): this socket sends one datagram per message from now on.
                    libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP
                        if groups[0].1 > 1 =>
                    {
                        self.gso.set(false)
                    }
                    // sendmmsg fails only when its first message does.
                    _ => return Err(io_error(format_args!("sendmmsg of datagram {start}"))),
                }
            }
        }

        pub fn close(&mut self) {
            if let Some(r) = self.receiver.take() {
                r.stop.store(true, Ordering::SeqCst);
                r.flow.room.notify_all();
                let one: u64 = 1;
                // SAFETY: writes 8 bytes to our own eventfd.
                unsafe { libc::write(r.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
                let _ = r.thread.join();
            }
            self.fd = None;
        }
    }

    #[cfg(test)]
    impl Socket {
        /// Whether GSO sends are still on (a refused one turns them off).
        pub fn gso_active(&self) -> bool {
            self.gso.get()
        }
    }

    impl Drop for Socket {
        fn drop(&mut self) {
            self.close();
        }
    }

    struct ReceiveLoop {
        fd: RawFd,
        wake: RawFd,
        stop: Arc<AtomicBool>,
        flow: Arc<Flow>,
        slot: usize,
        batch: usize,
        max_queued: u32,
        gather: usize,
    }

    impl ReceiveLoop {
        fn stopped(&self) -> bool {
            self.stop.load(Ordering::SeqCst)
        }

        /// Waits until the socket is readable; false when woken to stop.
        fn wait_readable(&self) -> bool {
            let mut fds = [
                libc::pollfd {
                    fd: self.fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            loop {
                // SAFETY: two valid pollfd entries.
                let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                if self.stopped() || (r > 0 && fds[1].revents != 0) {
                    return false;
                }
                if r > 0 || errno() != libc::EINTR {
                    return true;
                }
            }
        }

        /// Sleeps up to `PAUSE_NS` on the wake eventfd alone (the socket fills meanwhile); false when woken to stop.
        fn pause(&self) -> bool {
            let mut fd = libc::pollfd {
                fd: self.wake,
                events: libc::POLLIN,
                revents: 0,
            };
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: PAUSE_NS,
            };
            // SAFETY: one valid pollfd entry and a valid timeout; no signal mask change.
            let r = unsafe { libc::ppoll(&mut fd, 1, &timeout, std::ptr::null()) };
            !(self.stopped() || (r > 0 && fd.revents != 0))
        }

        fn run(self, tsfn: Tsfn) {
            let (slot, batch) = (self.slot, self.batch);
            // One slot per datagram, as large as the largest frame: a longer one is cut (MSG_TRUNC).
            let mut buf = vec![0u8; slot * batch];
            // SAFETY: zeroed socket addresses and message headers are valid.
            let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { zeroed() }; batch];
            let mut ctrl = vec![0u64; CTRL_WORDS * batch];
            let mut iovs: Vec<libc::iovec> = (0..batch)
                .map(|i| libc::iovec {
                    iov_base: buf[i * slot..].as_mut_ptr().cast(),
                    iov_len: slot,
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; batch];
            let mut drops = 0u32;
            // The records read but not yet handed over. While JS still has a batch to handle, the
            // datagrams that arrive meanwhile would only wait in its queue: they are read into one
            // batch (up to `gather` records) after a short pause instead of one small batch per
            // system call, which cost JS a call each (4.6-9 µs a frame at 60k/s paced against
            // 0.6 at full rate). When JS is idle a batch goes at once, so latency is unchanged.
            // The gathered records also ride out a pause of the JS thread (a garbage collection,
            // a long commit): they take ~30 bytes a datagram here against ~1 KiB in the kernel's
            // buffer, so the thread keeps reading until the gather is full, and only then waits.
            let mut data: Vec<u8> = Vec::new();
            let mut meta: Vec<u32> = Vec::new();
            while !self.stopped() {
                {
                    let mut q = self.flow.queued.lock().unwrap_or_else(|p| p.into_inner());
                    while *q >= self.max_queued
                        && self.gathered_full(&data, &meta)
                        && !self.stopped()
                    {
                        q = self.flow.room.wait(q).unwrap_or_else(|p| p.into_inner());
                    }
                }
                if self.stopped() {
                    break;
                }
                for i in 0..batch {
                    let h = &mut msgs[i].msg_hdr;
                    h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                    h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    h.msg_iov = &mut iovs[i];
                    h.msg_iovlen = 1;
                    h.msg_control = ctrl[i * CTRL_WORDS..].as_mut_ptr().cast();
                    h.msg_controllen = CTRL_WORDS * 8;
                    h.msg_flags = 0;
                    msgs[i].msg_len = 0;
                }
                // SAFETY: every header points into buffers that outlive the call.
                let n = unsafe {
                    libc::recvmmsg(
                        self.fd,
                        msgs.as_mut_ptr(),
                        batch as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if n < 0 {
                    let e = errno();
                    if e == libc::EINTR {
                        continue;
                    }
                    // Nothing more to read now: what was gathered goes to JS first.
                    if !meta.is_empty() {
                        if !self.deliver(&tsfn, &mut data, &mut meta, drops) {
                            break;
                        }
                        continue;
                    }
                    // EAGAIN: nothing to read. Anything else (an ICMP error queued on the
                    // socket...) is not the next datagram either: wait, then read on.
                    if !self.wait_readable() {
                        break;
                    }
                    continue;
                }
                let n = n as usize;
                if meta.is_empty() {
                    let mut total = 0;
                    for m in &msgs[..n] {
                        if m.msg_hdr.msg_flags & libc::MSG_TRUNC == 0 {
                            total += m.msg_len as usize;
                        }
                    }
                    data.reserve(total);
                    meta.reserve(n * WORDS);
                }
                for (i, m) in msgs[..n].iter().enumerate() {
                    let mut segment = 0usize;
                    // SAFETY: the kernel wrote `msg_controllen` bytes of control messages.
                    unsafe {
                        let mut c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
                        while !c.is_null() {
                            if (*c).cmsg_level == libc::SOL_SOCKET
                                && (*c).cmsg_type == libc::SO_RXQ_OVFL
                            {
                                drops = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>());
                            } else if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO
                            {
                                segment = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>())
                                    .max(0) as usize;
                            }
                            c = libc::CMSG_NXTHDR(&m.msg_hdr, c);
                        }
                    }
                    let mut w = [0u32; WORDS];
                    peer_words(&names[i], &mut w);
                    let len = m.msg_len as usize;
                    if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                        w[ub::OFFSET as usize] = data.len() as u32;
                        w[ub::LENGTH as usize] = m.msg_len;
                        w[ub::FLAGS as usize] = ub::TRUNCATED;
                        meta.extend_from_slice(&w);
                        continue;
                    }
                    // A coalesced run: datagrams of `segment` bytes each, the last possibly shorter.
                    let step = if segment > 0 { segment } else { len.max(1) };
                    let bytes = &buf[i * slot..i * slot + len];
                    let mut at = 0;
                    loop {
                        let part = step.min(len - at);
                        w[ub::OFFSET as usize] = data.len() as u32;
                        w[ub::LENGTH as usize] = part as u32;
                        data.extend_from_slice(&bytes[at..at + part]);
                        meta.extend_from_slice(&w);
                        at += part;
                        if at >= len {
                            break;
                        }
                    }
                }
                let queued = *self.flow.queued.lock().unwrap_or_else(|p| p.into_inner());
                if queued > 0 && !self.gathered_full(&data, &meta) {
                    // JS is busy: read on into this batch, after a pause once the socket is drained.
                    if n < batch && !self.pause() {
                        break;
                    }
                    continue;
                }
                if queued >= self.max_queued {
                    continue; // the gather is full and JS has all it may hold: wait at the top
                }
                if !self.deliver(&tsfn, &mut data, &mut meta, drops) {
                    break;
                }
            }
        }

        /// Whether the gathered records take no more (each bound may be passed by one system call's worth).
        fn gathered_full(&self, data: &[u8], meta: &[u32]) -> bool {
            meta.len() / WORDS >= self.gather || data.len() >= GATHER_BYTES
        }

        /// Hands the gathered records to JS as one batch; false when JS is closing the function.
        fn deliver(
            &self,
            tsfn: &Tsfn,
            data: &mut Vec<u8>,
            meta: &mut Vec<u32>,
            drops: u32,
        ) -> bool {
            *self.flow.queued.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let batch = Batch {
                data: std::mem::take(data),
                meta: std::mem::take(meta),
                drops,
            };
            tsfn.call(batch, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        }
    }

    /// How long the receive thread lets datagrams gather while JS is busy, ns: long enough that a
    /// system call reads dozens at 100,000 datagrams/s, short enough that a burst of a million a
    /// second (a sender's `sendmmsg`) fits in a 256 KiB kernel buffer meanwhile (1 ms did not).
    const PAUSE_NS: libc::c_long = 200_000;
    /// Most bytes of datagrams one gathered batch holds (a bound on the thread's memory, beside `gather` records).
    const GATHER_BYTES: usize = 4 << 20;
    /// Most records `start_receive` lets one gathered batch hold.
    const MAX_GATHER: u32 = ub::MAX_GATHER;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::imp::*;
    use opensynaptic_contract::{udp_batch as ub, udp_family};
    use std::net::{IpAddr, UdpSocket};

    #[test]
    fn addresses_survive_the_batch_words_both_ways() {
        for text in [
            "127.0.0.1",
            "10.20.30.40",
            "::1",
            "2001:db8::1:0:0:1",
            "::ffff:192.0.2.7",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            // SAFETY: a zeroed sockaddr_storage is valid.
            let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            sockaddr(ip, 4242, ip.is_ipv6(), &mut sa);
            let mut w = [0u32; ub::COUNT as usize];
            peer_words(&sa, &mut w);
            assert_eq!(w[ub::PORT as usize], 4242, "{text}");
            assert_eq!(words_ip(&w), Some(ip), "{text}");
        }
    }

    #[test]
    fn send_batch_sends_each_datagram_to_its_destination_and_checks_the_layout() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = Socket::bind("127.0.0.1", 0, udp_family::IPV4, None).unwrap();
        let data = b"abcdef";
        let mut meta = vec![0u32; 2 * ub::COUNT as usize];
        for (i, (off, len)) in [(0u32, 2u32), (2, 4)].into_iter().enumerate() {
            let w = &mut meta[i * ub::COUNT as usize..];
            w[ub::OFFSET as usize] = off;
            w[ub::LENGTH as usize] = len;
            w[ub::PORT as usize] = u32::from(port);
            w[ub::FAMILY as usize] = udp_family::IPV4;
            w[ub::ADDRESS as usize] = 0x7f00_0001;
        }
        assert_eq!(tx.send_batch(data, &meta, 0, 2).unwrap(), 2);
        let mut buf = [0u8; 16];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ab");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"cdef");
        // A record past the data, or more records than the array holds, is the caller's defect.
        meta[ub::LENGTH as usize] = 99;
        assert!(tx.send_batch(data, &meta, 0, 1).is_err());
        assert!(tx.send_batch(data, &meta, 1, 2).is_err());
    }

    #[test]
    fn a_run_of_equal_sizes_to_one_peer_goes_as_one_gso_send_and_arrives_as_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = Socket::bind("127.0.0.1", 0, udp_family::IPV4, None).unwrap();
        // Three of 3 bytes and a last one of 2, contiguous, to one peer.
        let data = b"aaabbbcccdd";
        let mut meta = vec![0u32; 4 * ub::COUNT as usize];
        for (i, (off, len)) in [(0u32, 3u32), (3, 3), (6, 3), (9, 2)]
            .into_iter()
            .enumerate()
        {
            let w = &mut meta[i * ub::COUNT as usize..];
            w[ub::OFFSET as usize] = off;
            w[ub::LENGTH as usize] = len;
            w[ub::PORT as usize] = u32::from(port);
            w[ub::FAMILY as usize] = udp_family::IPV4;
            w[ub::ADDRESS as usize] = 0x7f00_0001;
        }
        assert_eq!(tx.send_batch(data, &meta, 0, 4).unwrap(), 4);
        assert!(tx.gso_active(), "the kernel took the GSO send");
        let mut buf = [0u8; 16];
        for want in [&b"aaa"[..], b"bbb", b"ccc", b"dd"] {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], want);
        }
    }

    #[test]
    fn binding_a_port_in_use_names_the_error() {
        let held = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u32::from(held.local_addr().unwrap().port());
        let err = Socket::bind("127.0.0.1", port, udp_family::IPV4, None)
            .err()
            .unwrap();
        assert!(err.reason.starts_with("EADDRINUSE:"), "{}", err.reason);
        assert!(Socket::bind("localhost", 0, udp_family::IPV4, None).is_err());
    }
}
