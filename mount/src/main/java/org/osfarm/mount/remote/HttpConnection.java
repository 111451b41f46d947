package org.osfarm.mount.remote;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLSocketFactory;
import org.osfarm.transfer.CountingInputStream;

/**
 * One persistent HTTP/1.1 connection (keep-alive) to an osfarm server: a request at a time, a body
 * of {@code Content-Length} or chunked encoding. Not thread-safe: each fetch worker owns one.
 *
 * <p>Why not {@link java.net.http.HttpClient}: it initialises the TLS stack even for plain HTTP
 * (about half a second, all of it added to a mount's time to first byte), and a lazy mount issues
 * many small requests, so reusing a connection for each matters more than anything the JDK client
 * offers. {@code https://} goes through the same code on an {@link SSLSocketFactory} socket.
 *
 * <p>Every byte read from the socket (headers included) is added to {@code wire}.
 */
final class HttpConnection implements Closeable {
  private final URI base;
  private final String authorization;
  private final int connectTimeoutMillis;
  private final int readTimeoutMillis;
  private final AtomicLong wire;
  private Socket socket;
  private InputStream in;
  private OutputStream out;
  private boolean reused;

  /**
   * @param base scheme, host and port of the server (the path is ignored)
   * @param authorization the {@code Authorization} header value, or null
   */
  HttpConnection(
      URI base,
      String authorization,
      int connectTimeoutMillis,
      int readTimeoutMillis,
      AtomicLong wire) {
    this.base = base;
    this.authorization = authorization;
    this.connectTimeoutMillis = connectTimeoutMillis;
    this.readTimeoutMillis = readTimeoutMillis;
    this.wire = wire;
  }

  /** An answer's head and its body; the body must be read to the end or closed. */
  record Response(int status, Map<String, String> headers, long length, InputStream body)
      implements Closeable {
    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    /** The first 2 KiB of the body as text, for error messages. */
    String text() {
      try (InputStream b = body) {
        return new String(b.readNBytes(2048), StandardCharsets.UTF_8).trim();
      } catch (IOException e) {
        return "";
      }
    }

    @Override
    public void close() throws IOException {
      body.close();
    }
  }

  private int port() {
    if (base.getPort() >= 0) {
      return base.getPort();
    }
    return "https".equalsIgnoreCase(base.getScheme()) ? 443 : 80;
  }

  private void connect() throws IOException {
    Socket s =
        "https".equalsIgnoreCase(base.getScheme())
            ? SSLSocketFactory.getDefault().createSocket()
            : new Socket();
    try {
      s.setTcpNoDelay(true);
      s.setReceiveBufferSize(1 << 20);
      s.connect(new InetSocketAddress(base.getHost(), port()), connectTimeoutMillis);
      s.setSoTimeout(readTimeoutMillis);
      socket = s;
      in = new BufferedInputStream(new CountingInputStream(s.getInputStream(), wire), 128 * 1024);
      out = s.getOutputStream();
      reused = false;
    } catch (IOException | RuntimeException e) {
      s.close();
      throw e;
    }
  }

  /**
   * Sends {@code method path} (path includes any query) with {@code body} (null: none) and reads
   * the answer's head. A connection the server closed while idle is reopened once, transparently.
   */
  Response request(String method, String path, byte[] body) throws IOException {
    for (int attempt = 0; ; attempt++) {
      if (socket == null) {
        connect();
      }
      boolean wasReused = reused;
      try {
        send(method, path, body);
        String status = line(in);
        return readHead(status, method.equals("HEAD"));
      } catch (IOException e) {
        close();
        // A keep-alive connection the server dropped while it sat idle fails at once, before any
        // answer: that is no error of this request, so try again on a fresh connection.
        // A timeout is no such case: the server is there but silent.
        if (!wasReused || attempt > 0 || e instanceof java.net.SocketTimeoutException) {
          throw e;
        }
      }
    }
  }

  private void send(String method, String path, byte[] body) throws IOException {
    StringBuilder h = new StringBuilder(256);
    h.append(method).append(' ').append(path).append(" HTTP/1.1\r\n");
    h.append("Host: ").append(base.getHost()).append(':').append(port()).append("\r\n");
    h.append("User-Agent: osfarm-mount\r\n");
    if (authorization != null) {
      h.append("Authorization: ").append(authorization).append("\r\n");
    }
    if (body != null) {
      h.append("Content-Type: application/octet-stream\r\n");
      h.append("Content-Length: ").append(body.length).append("\r\n");
    }
    h.append("\r\n");
    byte[] head = h.toString().getBytes(StandardCharsets.ISO_8859_1);
    if (body == null) {
      out.write(head);
    } else {
      byte[] all = new byte[head.length + body.length];
      System.arraycopy(head, 0, all, 0, head.length);
      System.arraycopy(body, 0, all, head.length, body.length);
      out.write(all);
    }
    out.flush();
  }

  private Response readHead(String status, boolean head) throws IOException {
    String[] parts = status.split(" ", 3);
    if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
      throw new IOException("not an HTTP answer from " + base + ": " + status);
    }
    int code;
    try {
      code = Integer.parseInt(parts[1]);
    } catch (NumberFormatException e) {
      throw new IOException("not an HTTP answer from " + base + ": " + status);
    }
    Map<String, String> headers = new HashMap<>();
    for (String l = line(in); !l.isEmpty(); l = line(in)) {
      int c = l.indexOf(':');
      if (c > 0) {
        headers.put(l.substring(0, c).trim().toLowerCase(Locale.ROOT), l.substring(c + 1).trim());
      }
    }
    boolean keep =
        !parts[0].equals("HTTP/1.0")
            && !"close".equalsIgnoreCase(headers.getOrDefault("connection", ""));
    String te = headers.get("transfer-encoding");
    long length = -1;
    InputStream b;
    if (head) {
      b = new Limited(0, keep); // the head describes a body that is not sent
    } else if (te != null && te.toLowerCase(Locale.ROOT).contains("chunked")) {
      b = new Chunked(keep);
    } else if (headers.containsKey("content-length")) {
      try {
        length = Long.parseLong(headers.get("content-length"));
      } catch (NumberFormatException e) {
        throw new IOException("bad Content-Length from " + base);
      }
      b = new Limited(length, keep);
    } else if (code == 204 || code == 304) {
      b = new Limited(0, keep);
    } else {
      b = new Limited(Long.MAX_VALUE, false); // until the server closes
    }
    return new Response(code, headers, length, b);
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder sb = new StringBuilder(64);
    for (int c = in.read(); c != '\n'; c = in.read()) {
      if (c < 0) {
        throw new EOFException("connection closed in the answer's head");
      }
      if (c != '\r') {
        sb.append((char) c);
      }
      if (sb.length() > 16 * 1024) {
        throw new IOException("answer head line too long");
      }
    }
    return sb.toString();
  }

  /** Called by a body when it is done: keep the connection for the next request or drop it. */
  private void finished(boolean complete, boolean keep) throws IOException {
    if (complete && keep) {
      reused = true;
    } else {
      close();
    }
  }

  @Override
  public void close() throws IOException {
    Socket s = socket;
    socket = null;
    in = null;
    out = null;
    if (s != null) {
      s.close();
    }
  }

  /** A body of known length (or up to the end of the connection). */
  private final class Limited extends InputStream {
    private long left;
    private final boolean keep;
    private boolean done;
    private final InputStream src = in;

    Limited(long left, boolean keep) {
      this.left = left;
      this.keep = keep;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (left <= 0) {
        return -1;
      }
      int n = src.read(b, off, (int) Math.min(len, left));
      if (n < 0) {
        if (left != Long.MAX_VALUE) {
          throw new EOFException("the answer broke off (" + left + " bytes missing)");
        }
        left = 0;
        return -1;
      }
      if (left != Long.MAX_VALUE) {
        left -= n;
      }
      return n;
    }

    @Override
    public void close() throws IOException {
      if (done) {
        return;
      }
      done = true;
      // A small unread rest is cheaper to skip than a new connection.
      if (left > 0 && left <= 64 * 1024 && keep) {
        try {
          byte[] skip = new byte[8192];
          while (left > 0 && read(skip, 0, skip.length) >= 0) {
            // skip the rest
          }
        } catch (IOException e) {
          finished(false, false);
          return;
        }
      }
      finished(left == 0, keep);
    }
  }

  /** A chunked body. */
  private final class Chunked extends InputStream {
    private long left;
    private boolean eof;
    private boolean done;
    private final boolean keep;
    private final InputStream src = in;

    Chunked(boolean keep) {
      this.keep = keep;
    }

    private boolean next() throws IOException {
      if (eof) {
        return false;
      }
      if (left == 0) {
        String l = line(src);
        if (l.isEmpty()) {
          l = line(src); // the CRLF after the previous chunk
        }
        int semi = l.indexOf(';');
        try {
          left = Long.parseLong((semi < 0 ? l : l.substring(0, semi)).trim(), 16);
        } catch (NumberFormatException e) {
          throw new IOException("bad chunk header from " + base + ": " + l);
        }
        if (left == 0) {
          // trailers, then the empty line
          while (!line(src).isEmpty()) {
            // ignore trailers
          }
          eof = true;
          return false;
        }
      }
      return true;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (!next()) {
        return -1;
      }
      int n = src.read(b, off, (int) Math.min(len, left));
      if (n < 0) {
        throw new EOFException("the chunked answer broke off");
      }
      left -= n;
      return n;
    }

    @Override
    public void close() throws IOException {
      if (done) {
        return;
      }
      done = true;
      if (!eof && keep) {
        try {
          byte[] skip = new byte[8192];
          long budget = 64 * 1024;
          while (budget > 0) {
            int n = read(skip, 0, skip.length);
            if (n < 0) {
              break;
            }
            budget -= n;
          }
        } catch (IOException e) {
          finished(false, false);
          return;
        }
      }
      finished(eof, keep);
    }
  }
}
