//! One ssh connection: authentication and the protocol-level answers.
//!
//! russh calls this handler for every message; it decides quickly and
//! hands each session channel to its own task (`channel::run`), which sees
//! the same requests in the same order. Replies to channel requests are
//! given here, while russh still knows whether the client wants one.
//!
//! What a signed-in person gets: session channels (up to a few per
//! connection) with one pty, one shell or exec each, and local port
//! forwards (direct-tcpip, `channel::forward`) where `tat:ForwardPort`
//! allows them, and agent forwarding where `tat:ForwardAgent` does.
//! Everything else — remote port forwarding, X11 forwarding, Unix socket
//! forwarding, subsystems such as sftp, environment variables — is
//! refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, Pty};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::bridge::Person;
use super::target::{self, Target};
use super::{channel, Ctx};
use crate::api::Principal;
use crate::netguard::Admission;

/// Serves one accepted connection until it ends, the login grace time
/// passes without a sign-in, or the server stops.
pub(super) async fn serve(
    ctx: Arc<Ctx>,
    config: Arc<russh::server::Config>,
    tcp: TcpStream,
    peer: SocketAddr,
    admission: Admission,
) {
    let grace = ctx.settings.login_grace;
    let signed_in = CancellationToken::new();
    let shutdown = ctx.shutdown.clone();
    let conn = Conn {
        ctx,
        peer,
        admission,
        person: None,
        channels: HashMap::new(),
        signed_in: signed_in.clone(),
    };
    // The version exchange happens inside run_stream: bound it too.
    let session =
        match tokio::time::timeout(grace, russh::server::run_stream(config, tcp, conn)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "ssh handshake failed: {e}");
                return;
            }
            Err(_) => return,
        };
    let handle = session.handle();
    tokio::pin!(session);
    let late = tokio::time::sleep(grace);
    tokio::pin!(late);
    let mut cut = false;
    loop {
        tokio::select! {
            r = &mut session => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "ssh connection ended: {e}");
                }
                return;
            }
            _ = &mut late, if !cut && !signed_in.is_cancelled() => {
                cut = true;
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "login grace time over".into(), String::new())
                    .await;
            }
            _ = shutdown.cancelled(), if !cut => {
                cut = true;
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "the server is shutting down".into(), String::new())
                    .await;
            }
        }
        if cut {
            // The connection has been told to go; don't wait on it forever.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut session).await;
            return;
        }
    }
}

/// The state of one connection, as russh's handler.
struct Conn {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    /// Its place in the connection limits; released when the connection
    /// (and so this handler) goes.
    admission: Admission,
    person: Option<Person>,
    /// Session channels: whether each has started its shell or command.
    channels: HashMap<ChannelId, bool>,
    signed_in: CancellationToken,
}

impl Conn {
    fn reject() -> Auth {
        Auth::Reject {
            proceed_with_methods: None,
            partial_success: false,
        }
    }

    fn signed_in(&mut self, principal: Principal, target: Target) -> Auth {
        tracing::info!(peer = %self.peer, person = %principal.name, instance = %target.instance_id,
            login = %target.login(), "ssh sign-in");
        self.person = Some(Person {
            principal,
            target,
            peer: self.peer,
        });
        // Signed in: no longer "pending" for the per-source bound.
        self.admission.request_seen();
        self.signed_in.cancel();
        Auth::Accept
    }

    /// Takes a new channel for the signed-in person within the per
    /// connection limit (`started`: it takes no more requests), or
    /// refuses its open.
    async fn take_channel(
        &mut self,
        id: ChannelId,
        started: bool,
        reply: ChannelOpenHandle,
    ) -> Option<(Person, ChannelOpenHandle)> {
        let Some(person) = self.person.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return None;
        };
        if self.channels.len() >= self.ctx.settings.max_channels {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return None;
        }
        self.channels.insert(id, started);
        Some((person, reply))
    }

    /// Replies success to a request that may still start the channel (a
    /// pty before the shell, the shell or exec itself), failure otherwise.
    fn may_start(
        &mut self,
        channel: ChannelId,
        starts: bool,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        match self.channels.get_mut(&channel) {
            Some(started) if !*started => {
                if starts {
                    *started = true;
                }
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a registered key is worth a signature; an unknown person
        // and someone else's key get the same answer.
        let Ok(t) = target::parse(user) else {
            return Ok(Self::reject());
        };
        if self
            .ctx
            .api
            .ssh_key_offered(&t.person, offer.public_key)
            .await
        {
            Ok(Auth::Accept)
        } else {
            Ok(Self::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(t) = target::parse(user) else {
            return Ok(Self::reject());
        };
        match self
            .ctx
            .api
            .ssh_sign_in_key(&t.person, key.public_key, self.peer)
            .await
        {
            Some(p) => Ok(self.signed_in(p, t)),
            None => Ok(Self::reject()),
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let Ok(t) = target::parse(user) else {
            return Ok(Self::reject());
        };
        match self
            .ctx
            .api
            .ssh_sign_in_password(&t.person, password, self.peer)
            .await
        {
            Ok(p) => Ok(self.signed_in(p, t)),
            Err(_) => Ok(Self::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((person, reply)) = self.take_channel(channel.id(), false, reply).await else {
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(channel::run(
            self.ctx.clone(),
            person,
            channel,
            session.handle(),
        ));
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.may_start(channel, false, session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.may_start(channel, true, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.may_start(channel, true, session)
    }

    // Refused: subsystems (sftp), X11, environment variables (the login
    // shell's environment is the instance's, not the client's), every
    // kind of port or socket forwarding but local TCP forwards.

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    /// Agent forwarding (ssh -A) is noted on a session channel that has
    /// not started; `tat:ForwardAgent` decides it with the session, when
    /// its shell or command starts (`channel::run`), and a refusal is said
    /// on the client's stderr. (OpenSSH asks without wanting a reply.)
    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.person.is_some() && self.channels.get(&channel) == Some(&false))
    }

    /// A port forward (`ssh -L`, `ssh -W`): decided as `tat:ForwardPort` on
    /// the instance for this host and port, then connected by the agent
    /// from the instance. The open is answered once that is done.
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port_to_connect) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        // Counted with the session channels; it takes no requests.
        let Some((person, reply)) = self.take_channel(channel.id(), true, reply).await else {
            return Ok(());
        };
        let to = crate::session::Forward {
            host: host_to_connect.to_string(),
            port,
        };
        tokio::spawn(channel::forward(
            self.ctx.clone(),
            person,
            channel,
            to,
            reply,
            session.handle(),
        ));
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}
