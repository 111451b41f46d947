package org.osfarm.mount.remote;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP relay on loopback in front of a real server: {@link #kill} drops every connection and stops
 * listening at once, as the kernel does when a server process is killed (the JDK's HTTP server,
 * stopped in-process, leaves idle keep-alive connections open).
 */
final class KillableRelay implements AutoCloseable {
  private final ServerSocket listen;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  KillableRelay(int targetPort) throws IOException {
    listen = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread.ofVirtual()
        .start(
            () -> {
              while (!listen.isClosed()) {
                try {
                  Socket c = listen.accept();
                  Socket t = new Socket(InetAddress.getLoopbackAddress(), targetPort);
                  sockets.add(c);
                  sockets.add(t);
                  pump(c, t);
                  pump(t, c);
                } catch (IOException e) {
                  return;
                }
              }
            });
  }

  int port() {
    return listen.getLocalPort();
  }

  private static void pump(Socket from, Socket to) {
    Thread.ofVirtual()
        .start(
            () -> {
              try (InputStream in = from.getInputStream();
                  OutputStream out = to.getOutputStream()) {
                in.transferTo(out);
              } catch (IOException ignored) {
                // one side is gone
              }
              try {
                to.shutdownOutput();
              } catch (IOException ignored) {
                // already closed
              }
            });
  }

  /** Drops every connection (reset) and refuses new ones. */
  void kill() throws IOException {
    listen.close();
    for (Socket s : sockets) {
      try {
        s.setSoLinger(true, 0);
      } catch (IOException ignored) {
        // already closed
      }
      s.close();
    }
  }

  @Override
  public void close() throws IOException {
    kill();
  }
}
