package org.osfarm.server;

/**
 * An error a client can fix or must know about, answered as an RFC 9457 problem-details body.
 * Thrown by handlers; the server maps it to its status.
 */
final class Problem extends RuntimeException {
  final int status;
  final String slug;
  final String title;
  final java.util.Map<String, String> headers;

  Problem(int status, String slug, String title, String detail) {
    this(status, slug, title, detail, java.util.Map.of());
  }

  Problem(
      int status, String slug, String title, String detail, java.util.Map<String, String> headers) {
    super(detail);
    this.status = status;
    this.slug = slug;
    this.title = title;
    this.headers = headers;
  }

  static Problem badRequest(String detail) {
    return new Problem(400, "bad-request", "Bad request", detail);
  }

  static Problem notFound(String detail) {
    return new Problem(404, "not-found", "Not found", detail);
  }

  /** The problem type URI (documented in docs/server.md). */
  String type() {
    return "https://osfarm.org/problems/" + slug;
  }
}
