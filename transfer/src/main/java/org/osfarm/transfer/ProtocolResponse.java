package org.osfarm.transfer;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A protocol handler's answer, independent of the web framework: status, headers, and a body that
 * is written (streamed) when the framework is ready.
 *
 * @param status HTTP status
 * @param contentType the body's media type
 * @param headers more headers (caching, object type)
 * @param length the body's length, or -1 if it is streamed
 * @param body writes the body
 */
public record ProtocolResponse(
    int status, String contentType, Map<String, String> headers, long length, Body body) {

  /** Writes a response body. */
  @FunctionalInterface
  public interface Body {
    void writeTo(OutputStream out) throws IOException;
  }

  /** Cache headers for content-addressed URLs: the bytes behind them never change. */
  public static final Map<String, String> IMMUTABLE =
      Map.of("Cache-Control", "public, max-age=31536000, immutable");

  static ProtocolResponse text(int status, String text) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    return new ProtocolResponse(
        status,
        "text/plain; charset=utf-8",
        Map.of("Cache-Control", "no-store"),
        b.length,
        o -> o.write(b));
  }

  static ProtocolResponse bytes(int status, String type, Map<String, String> headers, byte[] b) {
    return new ProtocolResponse(status, type, headers, b.length, o -> o.write(b));
  }

  static ProtocolResponse stream(String type, Body body) {
    return new ProtocolResponse(200, type, Map.of("Cache-Control", "no-store"), -1, body);
  }
}
