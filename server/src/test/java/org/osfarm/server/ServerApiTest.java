package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The REST API, downloads, auth, problem details, OpenAPI and metrics over real HTTP. */
class ServerApiTest {
  @TempDir static Path tmp;
  static OsfarmServer server;
  static Http http;
  static String token;

  @BeforeAll
  static void start() throws Exception {
    ServerFixture.demoRepository(tmp.resolve("repo"), tmp);
    server = new OsfarmServer(ServerFixture.settings(tmp)).start();
    token = server.tokens().create("tester");
    http = new Http(server.url());
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.stop();
    }
  }

  static JsonNode json(HttpResponse<String> r) throws Exception {
    return OsfarmServer.JSON.readTree(r.body());
  }

  static void assertProblem(HttpResponse<String> r, int status, String slug) throws Exception {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    assertThat(r.headers().firstValue("Content-Type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
    JsonNode p = json(r);
    assertThat(p.get("status").asInt()).isEqualTo(status);
    assertThat(p.get("type").asText()).isEqualTo("https://osfarm.org/problems/" + slug);
    assertThat(p.get("title").asText()).isNotBlank();
    assertThat(p.get("detail").asText()).isNotBlank();
  }

  static String demo(int back) throws Exception {
    JsonNode ref = json(http.get("/api/v1/refs/images/demo"));
    return ref.get("history").get(back).get("id").asText();
  }

  @Test
  void browsesImagesHistorySnapshotsTreeAndManifest() throws Exception {
    JsonNode images = json(http.get("/api/v1/images"));
    assertThat(images).hasSize(1);
    assertThat(images.get(0).get("name").asText()).isEqualTo("images/demo");

    JsonNode ref = json(http.get("/api/v1/refs/images/demo"));
    assertThat(ref.get("history")).hasSize(2);
    assertThat(ref.get("history").get(0).get("message").asText()).isEqualTo("v2");
    String v2 = ref.get("snapshot").asText();

    JsonNode snap = json(http.get("/api/v1/snapshots/" + v2.substring(0, 12)));
    assertThat(snap.get("id").asText()).isEqualTo(v2);
    assertThat(snap.get("parents").get(0).asText()).isEqualTo(demo(1));
    assertThat(snap.get("refs").get(0).asText()).isEqualTo("images/demo");

    JsonNode tree = json(http.get("/api/v1/snapshots/" + v2 + "/tree?path=usr/bin"));
    assertThat(tree.findValuesAsText("name")).containsExactly("big", "curl");

    String manifest = http.get("/api/v1/snapshots/" + v2 + "/manifest").body();
    String motdSum =
        HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("SHA-256")
                    .digest("hello from v2\n".getBytes(StandardCharsets.UTF_8)));
    assertThat(manifest.lines()).anyMatch(l -> l.startsWith("etc/motd ") && l.endsWith(motdSum));

    JsonNode pkgs = json(http.get("/api/v1/snapshots/" + v2 + "/packages"));
    assertThat(pkgs.findValuesAsText("name")).contains("hello", "base-files", "curl");
  }

  @Test
  void searchesTheCatalogAndShowsProvenance() throws Exception {
    String v2 = demo(0);
    String v1 = demo(1);
    String motdSum =
        HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("SHA-256")
                    .digest("hello from v2\n".getBytes(StandardCharsets.UTF_8)));
    JsonNode byDigest = json(http.get("/api/v1/find?digest=" + motdSum));
    assertThat(byDigest.findValuesAsText("snapshot")).containsExactly(v2);
    assertThat(byDigest.get(0).get("entries").findValuesAsText("path")).containsExactly("etc/motd");
    JsonNode byPath = json(http.get("/api/v1/find?path=usr/bin/curl"));
    assertThat(byPath.findValuesAsText("snapshot")).contains(v2).doesNotContain(v1);
    JsonNode byPackage = json(http.get("/api/v1/find?package=curl&latest=1"));
    assertThat(byPackage.findValuesAsText("snapshot")).containsExactly(v2);
    assertProblem(http.get("/api/v1/find?digest=nothex"), 400, "bad-request");

    JsonNode prov = json(http.get("/api/v1/snapshots/" + v2 + "/provenance"));
    assertThat(prov.get("snapshot").asText()).isEqualTo(v2);
    assertThat(prov.get("lineage").findValuesAsText("snapshot")).contains(v1);
    JsonNode derived = json(http.get("/api/v1/snapshots/" + v1 + "/derived"));
    assertThat(derived.findValuesAsText("snapshot")).contains(v2);

    // The same in the web UI: the search page and the snapshot page's derivations.
    String page = http.get("/repo/search?path=&package=curl&latest=1").body();
    assertThat(page).contains("1 snapshot(s)").contains(v2.substring(0, 12));
    assertThat(http.get("/repo/search").body())
        .contains("id=\"search\"")
        .doesNotContain("snapshot(s)");
    assertThat(http.get("/repo/snapshots/" + v1).body())
        .contains("id=\"derived\"")
        .contains(v2.substring(0, 12));
  }

  @Test
  void diffShowsFileAndPackageChanges() throws Exception {
    JsonNode d = json(http.get("/api/v1/diff?from=" + demo(1) + "&to=images/demo"));
    assertThat(d.get("files").findValuesAsText("path")).contains("etc/motd", "usr/bin/curl");
    JsonNode pk = d.get("packages");
    assertThat(pk.findValuesAsText("name")).containsExactlyInAnyOrder("curl", "hello");
    for (JsonNode p : pk) {
      if (p.get("name").asText().equals("hello")) {
        assertThat(p.get("kind").asText()).isEqualTo("upgraded");
        assertThat(p.get("after").asText()).isEqualTo("2.10-4");
      }
    }
  }

  @Test
  void downloadsStreamWithDigestAndResumeWithRange() throws Exception {
    String path = "/api/v1/snapshots/" + demo(0) + "/download?format=tar.gz&name=demo";
    HttpResponse<byte[]> full = http.getBytes(path);
    assertThat(full.statusCode()).isEqualTo(200);
    byte[] body = full.body();
    byte[] sha = MessageDigest.getInstance("SHA-256").digest(body);
    assertThat(full.headers().firstValue("Repr-Digest"))
        .hasValue("sha-256=:" + Base64.getEncoder().encodeToString(sha) + ":");
    assertThat(full.headers().firstValue("Digest"))
        .hasValue("SHA-256=" + Base64.getEncoder().encodeToString(sha));
    assertThat(full.headers().firstValue("Accept-Ranges")).hasValue("bytes");
    assertThat(full.headers().firstValue("Content-Disposition").orElseThrow())
        .contains("demo.tar.gz");
    // a real tar.gz holding the image
    String listing;
    try (var in = new GZIPInputStream(new ByteArrayInputStream(body))) {
      listing = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
    }
    assertThat(listing).contains("etc/motd").contains("hello from v2");

    // a range, and a resume from an offset: together they give the same bytes
    HttpResponse<byte[]> part = http.getBytes(path, "Range", "bytes=100-1099");
    assertThat(part.statusCode()).isEqualTo(206);
    assertThat(part.headers().firstValue("Content-Range"))
        .hasValue("bytes 100-1099/" + body.length);
    assertThat(part.body()).isEqualTo(Arrays.copyOfRange(body, 100, 1100));
    int cut = body.length / 3;
    ByteArrayOutputStream resumed = new ByteArrayOutputStream();
    resumed.write(Arrays.copyOfRange(body, 0, cut));
    String etag = full.headers().firstValue("ETag").orElseThrow();
    HttpResponse<byte[]> rest =
        http.getBytes(path, "Range", "bytes=" + cut + "-", "If-Range", etag);
    assertThat(rest.statusCode()).isEqualTo(206);
    resumed.write(rest.body());
    assertThat(resumed.toByteArray()).isEqualTo(body);
    // suffix range
    HttpResponse<byte[]> tail = http.getBytes(path, "Range", "bytes=-10");
    assertThat(tail.body()).isEqualTo(Arrays.copyOfRange(body, body.length - 10, body.length));
    // a stale If-Range gets the whole file
    HttpResponse<byte[]> stale = http.getBytes(path, "Range", "bytes=5-", "If-Range", "\"0000\"");
    assertThat(stale.statusCode()).isEqualTo(200);
    assertThat(stale.body()).isEqualTo(body);
    // outside the file
    HttpResponse<String> bad =
        http.send(http.req(path).header("Range", "bytes=" + (body.length + 5) + "-").build());
    assertProblem(bad, 416, "range-not-satisfiable");
    assertThat(bad.headers().firstValue("Content-Range")).hasValue("bytes */" + body.length);
    // HEAD: the headers only
    HttpResponse<String> head =
        http.send(http.req(path).method("HEAD", HttpRequest.BodyPublishers.noBody()).build());
    assertThat(head.headers().firstValue("Content-Length")).hasValue("" + body.length);

    String metrics = http.get("/metrics").body();
    assertThat(metrics).contains("osfarm_bytes_served_bytes_total").contains("osfarm_queue_length");
    double served =
        metrics
            .lines()
            .filter(l -> l.startsWith("osfarm_bytes_served_bytes_total"))
            .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
            .sum();
    assertThat(served).isGreaterThanOrEqualTo(2.0 * body.length); // full, stale full, resume
  }

  @Test
  void mutationsNeedAValidToken() throws Exception {
    String spec = "<image name=\"x\" class=\"debian-bookworm\"/>";
    HttpResponse<String> none = http.post("/api/v1/jobs", "application/xml", spec);
    assertProblem(none, 401, "unauthorized");
    assertThat(none.headers().firstValue("WWW-Authenticate").orElseThrow()).startsWith("Bearer");
    Http bad = new Http(server.url());
    bad.token = "osf_not-a-real-token";
    assertProblem(bad.post("/api/v1/jobs", "application/xml", spec), 401, "unauthorized");
    assertProblem(
        bad.send(
            bad.req("/api/v1/refs/images/copy")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"target\":\"images/demo\"}"))
                .build()),
        401,
        "unauthorized");
    assertProblem(http.get("/create?class=debian-bookworm"), 401, "unauthorized");
    assertThat(json(http.get("/api/v1/jobs"))).isEmpty();

    // with a token: tag, then delete
    Http ok = new Http(server.url());
    ok.token = token;
    HttpResponse<String> tag =
        ok.send(
            ok.req("/api/v1/refs/images/demo-stable")
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"target\":\"images/demo\"}"))
                .build());
    assertThat(tag.statusCode()).as(tag.body()).isEqualTo(200);
    assertThat(json(tag).get("by").asText()).isEqualTo("tester");
    assertThat(json(http.get("/api/v1/refs/images/demo-stable")).get("snapshot").asText())
        .isEqualTo(demo(0));
    HttpResponse<String> del = ok.send(ok.req("/api/v1/refs/images/demo-stable").DELETE().build());
    assertThat(del.statusCode()).isEqualTo(204);
    assertProblem(http.get("/api/v1/refs/images/demo-stable"), 404, "not-found");
  }

  @Test
  void badInputGetsProblemDetailsAndWritesNothing() throws Exception {
    Http ok = new Http(server.url());
    ok.token = token;
    var refsBefore = server.repository().refs().list();
    assertProblem(
        ok.post("/api/v1/jobs", "application/xml", "<image name=\"x\" class=\"debian-bookworm\">"),
        400,
        "invalid-spec");
    assertProblem(
        ok.post("/api/v1/jobs", "application/xml", "<image name=\"x\" class=\"no-such-distro\"/>"),
        400,
        "invalid-spec");
    assertProblem(
        ok.post(
            "/api/v1/jobs",
            "application/xml",
            "<image name=\"x\" class=\"debian-bookworm\" colour=\"red\"/>"),
        400,
        "invalid-spec");
    assertProblem(
        ok.post(
            "/api/v1/jobs",
            "application/json",
            "{\"name\":\"../../etc\",\"class\":\"debian-bookworm\"}"),
        400,
        "invalid-name");
    assertProblem(ok.get("/create?class=debian-bookworm&name=a/b"), 400, "invalid-name");
    assertProblem(ok.get("/create?class=debian-bookworm&arch=sparc"), 400, "invalid-spec");
    assertProblem(ok.get("/create?class=debian-bookworm&group=nonsense"), 400, "invalid-spec");
    assertProblem(
        ok.post(
            "/api/v1/jobs?format=floppy",
            "application/xml",
            "<image name=\"x\" class=\"debian-bookworm\"/>"),
        400,
        "bad-request");
    String huge =
        "<image name=\"x\" class=\"debian-bookworm\"><package>"
            + "a".repeat(70_000)
            + "</package></image>";
    assertProblem(ok.post("/api/v1/jobs", "application/xml", huge), 413, "too-large");
    assertProblem(ok.get("/api/v1/snapshots/ffffffffffff"), 404, "not-found");
    assertProblem(ok.get("/api/v1/diff?from=images/demo"), 400, "bad-request");
    assertProblem(ok.get("/api/v1/nothing-here"), 404, "not-found");
    assertProblem(
        ok.send(
            ok.req("/api/v1/refs/images/..%2Fx")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"target\":\"images/demo\"}"))
                .build()),
        400,
        "invalid-ref");
    assertThat(json(http.get("/api/v1/jobs"))).isEmpty();
    assertThat(server.repository().refs().list()).isEqualTo(refsBefore);
    assertThat(Files.exists(tmp.resolve("data/jobs"))).isFalse();
  }

  @Test
  void openApiDescribesTheRoutes() throws Exception {
    JsonNode doc = json(http.get("/api/v1/openapi.json"));
    assertThat(doc.get("openapi").asText()).startsWith("3.");
    var paths = doc.get("paths");
    for (String p :
        new String[] {
          "/api/v1/jobs",
          "/api/v1/jobs/{id}/download",
          "/api/v1/snapshots/{id}/download",
          "/api/v1/refs/{name}",
          "/api/v1/classes",
          "/api/v1/packages",
          "/api/v1/find",
          "/api/v1/snapshots/{id}/provenance",
          "/create",
          "/metrics"
        }) {
      assertThat(paths.has(p)).as(p).isTrue();
    }
    // every documented GET without path parameters answers (not 404)
    for (var it = paths.fieldNames(); it.hasNext(); ) {
      String p = it.next();
      if (!p.contains("{") && paths.get(p).has("get") && !p.equals("/create")) {
        int st = http.get(p).statusCode();
        assertThat(st).as(p).isNotEqualTo(404).isLessThan(500);
      }
    }
    JsonNode classes = json(http.get("/api/v1/classes"));
    assertThat(classes.findValuesAsText("name")).contains("debian-bookworm");
    JsonNode status = json(http.get("/api/v1/status"));
    assertThat(status.get("workers").asInt()).isEqualTo(2);
    assertThat(status.get("snapshots").asInt()).isGreaterThanOrEqualTo(2);
  }

  @Test
  void pagesRenderServerSide() throws Exception {
    String v2 = demo(0);
    for (String p :
        new String[] {
          "/",
          "/request/advanced",
          "/request/appliance",
          "/upload",
          "/jobs",
          "/ui/jobs/table",
          "/repo",
          "/repo/refs/images/demo",
          "/repo/snapshots/" + v2,
          "/repo/snapshots/" + v2 + "/tree?path=etc",
          "/repo/diff?from=" + demo(1) + "&to=" + v2,
          "/status",
          "/login",
          "/style.css",
          "/assets/htmx.min.js"
        }) {
      HttpResponse<String> r = http.get(p);
      assertThat(r.statusCode()).as(p).isEqualTo(200);
      assertThat(r.body()).as(p).isNotBlank();
    }
    assertThat(http.get("/repo/snapshots/" + v2).body()).contains("curl", "7.88.1-10", "tar.zst");
    assertThat(http.get("/assets/htmx.min.js").body()).contains("htmx");
    // a browser gets a problem as a page
    HttpResponse<String> page =
        http.send(http.req("/repo/snapshots/ffffffffffff").header("Accept", "text/html").build());
    assertThat(page.statusCode()).isEqualTo(404);
    assertThat(page.body()).contains("problem-detail").contains("ffffffffffff");
  }

  @Test
  void readingCanBeClosed() throws Exception {
    Path root = tmp.resolve("closed");
    ServerFixture.demoRepository(root.resolve("repo"), root);
    try (OsfarmServer closed =
        new OsfarmServer(ServerFixture.settings(root).withOpenRead(false)).start()) {
      String t = closed.tokens().create("reader");
      Http anon = new Http(closed.url());
      assertProblem(anon.get("/api/v1/refs"), 401, "unauthorized");
      assertProblem(anon.get("/api/v1/snapshots/images/demo/download"), 401, "unauthorized");
      assertThat(anon.get("/api/v1/openapi.json").statusCode()).isEqualTo(200);
      Http reader = new Http(closed.url());
      reader.token = t;
      assertThat(reader.get("/api/v1/refs").statusCode()).isEqualTo(200);
    }
  }
}
