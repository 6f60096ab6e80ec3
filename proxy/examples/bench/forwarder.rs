//! A bare TCP relay to the server (`copy_bidirectional`, TCP_NODELAY, the
//! same tokio runtime as pgcache): what one extra hop costs when the proxy
//! does nothing at all. The floor for the miss path, as the ceiling is the
//! roof for hits.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub fn serve(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (mut client, _) = listener.accept().await?;
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    })
}
