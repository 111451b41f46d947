package org.osfarm.transfer;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * A minimal HTTP/1.1 client for plain {@code http://} URLs: one request per connection, a body of
 * known length in, a body of {@code Content-Length} or chunked encoding out.
 *
 * <p>Why not {@link java.net.http.HttpClient}: building one initialises the TLS stack (the default
 * {@code SSLContext}, its providers and certificates) even for plain HTTP, about half a second of
 * the start of every short {@code osfarm fetch} on the benchmark machine, more than the whole local
 * copy of a 512 MiB image takes. The block protocol needs nothing beyond this.
 */
final class PlainHttp {
  private PlainHttp() {}

  static boolean handles(URI u) {
    return "http".equalsIgnoreCase(u.getScheme()) && u.getHost() != null;
  }

  /** An answer: the status and the body (closing it closes the connection). */
  record Response(int status, long length, InputStream body) implements AutoCloseable {
    @Override
    public void close() throws IOException {
      body.close();
    }

    /** The first 4 KiB of the body as text, for error messages. */
    String text() {
      try (InputStream in = body) {
        return new String(in.readNBytes(4096), StandardCharsets.UTF_8).trim();
      } catch (IOException e) {
        return "";
      }
    }
  }

  /** Sends {@code method u} with {@code body} (null: none) and reads the answer's head. */
  static Response send(URI u, String method, byte[] body, int timeoutMillis) throws IOException {
    int port = u.getPort() < 0 ? 80 : u.getPort();
    Socket s = new Socket();
    try {
      s.setTcpNoDelay(true);
      s.connect(new InetSocketAddress(u.getHost(), port), 15_000);
      s.setSoTimeout(timeoutMillis);
      String target =
          (u.getRawPath() == null || u.getRawPath().isEmpty() ? "/" : u.getRawPath())
              + (u.getRawQuery() == null ? "" : "?" + u.getRawQuery());
      StringBuilder h = new StringBuilder(256);
      h.append(method).append(' ').append(target).append(" HTTP/1.1\r\n");
      h.append("Host: ").append(u.getHost()).append(':').append(port).append("\r\n");
      h.append("User-Agent: osfarm\r\nConnection: close\r\n");
      if (body != null) {
        h.append("Content-Type: application/octet-stream\r\n");
        h.append("Content-Length: ").append(body.length).append("\r\n");
      }
      h.append("\r\n");
      OutputStream out = s.getOutputStream();
      byte[] head = h.toString().getBytes(StandardCharsets.ISO_8859_1);
      if (body != null && body.length <= 64 * 1024) {
        byte[] all = new byte[head.length + body.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(body, 0, all, head.length, body.length);
        out.write(all);
      } else {
        out.write(head);
        if (body != null) {
          out.write(body);
        }
      }
      out.flush();
      InputStream in = new BufferedInputStream(s.getInputStream(), 256 * 1024);
      String status = line(in);
      String[] parts = status.split(" ", 3);
      if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
        throw new IOException("not an HTTP answer from " + u + ": " + status);
      }
      int code = Integer.parseInt(parts[1]);
      long length = -1;
      boolean chunked = false;
      for (String l = line(in); !l.isEmpty(); l = line(in)) {
        int c = l.indexOf(':');
        if (c <= 0) {
          continue;
        }
        String name = l.substring(0, c).trim().toLowerCase(Locale.ROOT);
        String value = l.substring(c + 1).trim();
        if (name.equals("content-length")) {
          length = Long.parseLong(value);
        } else if (name.equals("transfer-encoding")
            && value.toLowerCase(Locale.ROOT).contains("chunked")) {
          chunked = true;
        }
      }
      InputStream b;
      if (chunked) {
        b = new Chunked(in, s);
        length = -1;
      } else if (length >= 0) {
        b = new Limited(in, length, s);
      } else {
        b = new Limited(in, Long.MAX_VALUE, s); // until the server closes
      }
      return new Response(code, length, b);
    } catch (IOException | RuntimeException e) {
      s.close();
      throw e;
    }
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

  /** A body of known length; closing it closes the socket. */
  private static final class Limited extends FilterInputStream {
    private long left;
    private final Socket s;

    Limited(InputStream in, long left, Socket s) {
      super(in);
      this.left = left;
      this.s = s;
    }

    @Override
    public int read() throws IOException {
      if (left <= 0) {
        return -1;
      }
      int c = in.read();
      if (c >= 0) {
        left--;
      }
      return c;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (left <= 0) {
        return -1;
      }
      int n = in.read(b, off, (int) Math.min(len, left));
      if (n > 0) {
        left -= n;
      }
      return n;
    }

    @Override
    public void close() throws IOException {
      s.close();
    }
  }

  /** A chunked body; closing it closes the socket. */
  private static final class Chunked extends FilterInputStream {
    private long left;
    private boolean eof;
    private final Socket s;

    Chunked(InputStream in, Socket s) {
      super(in);
      this.s = s;
    }

    private boolean next() throws IOException {
      if (eof) {
        return false;
      }
      if (left == 0) {
        String l = line(in);
        if (l.isEmpty()) {
          l = line(in); // the CRLF after the previous chunk
        }
        int semi = l.indexOf(';');
        left = Long.parseLong((semi < 0 ? l : l.substring(0, semi)).trim(), 16);
        if (left == 0) {
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
      int n = in.read(b, off, (int) Math.min(len, left));
      if (n < 0) {
        throw new EOFException("chunked answer broke off");
      }
      left -= n;
      return n;
    }

    @Override
    public void close() throws IOException {
      s.close();
    }
  }
}
