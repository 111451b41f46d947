package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayInputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.build.ImageSpec;

/**
 * The job queue over real HTTP, a real repository and a real SQLite database, with a test image
 * service that publishes a small real tree (so the orchestration runs in seconds).
 */
class JobQueueTest {
  @TempDir Path tmp;

  record Running(OsfarmServer server, TestImageService images, Http http) implements AutoCloseable {
    @Override
    public void close() {
      server.stop();
    }
  }

  Running start(Settings settings, boolean gateOpen) throws Exception {
    TestImageService images = new TestImageService(tmp);
    if (!gateOpen) {
      images.gate = new CountDownLatch(1);
    }
    OsfarmServer s = new OsfarmServer(settings, images).start();
    images.repo = s.repository();
    Http http = new Http(s.url());
    http.token = s.tokens().list().isEmpty() ? s.tokens().create("ci") : null;
    return new Running(s, images, http);
  }

  static JsonNode json(HttpResponse<String> r) throws Exception {
    return OsfarmServer.JSON.readTree(r.body());
  }

  static JsonNode awaitJob(Http http, String id, String state) throws Exception {
    for (int i = 0; i < 600; i++) {
      JsonNode j = json(http.get("/api/v1/jobs/" + id));
      if (j.get("state").asText().equals(state)) {
        return j;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("job " + id + " never became " + state);
  }

  static String spec(String name, String... packages) {
    StringBuilder sb =
        new StringBuilder("{\"name\":\"" + name + "\",\"class\":\"debian-bookworm\"");
    sb.append(",\"packages\":[");
    for (int i = 0; i < packages.length; i++) {
      sb.append(i > 0 ? "," : "").append('"').append(packages[i]).append('"');
    }
    return sb.append("]}").toString();
  }

  @Test
  void fiftyIdenticalConcurrentRequestsBuildOnceAndAllDownload() throws Exception {
    try (Running r = start(ServerFixture.settings(tmp), false)) {
      ExecutorService pool = Executors.newFixedThreadPool(50);
      try {
        List<Future<HttpResponse<String>>> posts = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
          posts.add(
              pool.submit(
                  () ->
                      r.http()
                          .post("/api/v1/jobs", "application/json", spec("same", "curl", "vim"))));
        }
        Set<String> ids = new HashSet<>();
        int created = 0;
        for (Future<HttpResponse<String>> f : posts) {
          HttpResponse<String> resp = f.get(60, TimeUnit.SECONDS);
          assertThat(resp.statusCode()).as(resp.body()).isIn(200, 201);
          created += resp.statusCode() == 201 ? 1 : 0;
          ids.add(json(resp).get("id").asText());
        }
        assertThat(ids).hasSize(1);
        assertThat(created).isEqualTo(1);
        String id = ids.iterator().next();
        r.images().gate.countDown();
        JsonNode done = awaitJob(r.http(), id, "done");
        assertThat(r.images().builds.get()).isEqualTo(1);

        List<Future<HttpResponse<byte[]>>> gets = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
          gets.add(pool.submit(() -> r.http().getBytes("/api/v1/jobs/" + id + "/download")));
        }
        for (Future<HttpResponse<byte[]>> f : gets) {
          HttpResponse<byte[]> resp = f.get(60, TimeUnit.SECONDS);
          assertThat(resp.statusCode()).isEqualTo(200);
          byte[] sha = MessageDigest.getInstance("SHA-256").digest(resp.body());
          assertThat(java.util.HexFormat.of().formatHex(sha))
              .isEqualTo(done.get("sha256").asText());
          assertThat(resp.headers().firstValue("Repr-Digest"))
              .hasValue("sha-256=:" + Base64.getEncoder().encodeToString(sha) + ":");
        }
        String metrics = r.http().get("/metrics").body();
        assertThat(metrics).contains("osfarm_requests_deduplicated_total 49.0");
        assertThat(metrics).contains("osfarm_builds_total{result=\"done\"} 1.0");
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void aJobStoresOnlyHashesOfTheRootAndUserPasswords() throws Exception {
    String password = "Sup3r-s3cret-pw!";
    String userPassword = "Al1ce-s3cret-pw?";
    String body =
        "{\"name\":\"pw\",\"class\":\"debian-bookworm\",\"rootPassword\":\""
            + password
            + "\",\"users\":[{\"name\":\"alice\",\"password\":\""
            + userPassword
            + "\"}]}";
    Settings settings = ServerFixture.settings(tmp);
    try (Running r = start(settings, false)) {
      HttpResponse<String> first = r.http().post("/api/v1/jobs", "application/json", body);
      assertThat(first.statusCode()).as(first.body()).isEqualTo(201);
      // the same request again shares the job: the hash is the same for the same password
      HttpResponse<String> again = r.http().post("/api/v1/jobs", "application/json", body);
      assertThat(again.statusCode()).as(again.body()).isEqualTo(200);
      String id = json(first).get("id").asText();
      assertThat(json(again).get("id").asText()).isEqualTo(id);
      r.images().gate.countDown();
      awaitJob(r.http(), id, "done");

      // the builder got a SHA-512 crypt hash of the password, never the password
      ImageSpec built = r.images().lastSpec;
      assertThat(built.rootPassword()).isNull();
      assertThat(built.rootPasswordHash()).startsWith("$6$");
      assertThat(ShaCrypt.verify(password, built.rootPasswordHash())).isTrue();
      ImageSpec.User alice = built.users().getFirst();
      assertThat(alice.password()).isNull();
      assertThat(alice.passwordHash()).startsWith("$6$");
      assertThat(ShaCrypt.verify(userPassword, alice.passwordHash())).isTrue();
      assertThat(ShaCrypt.verify(password, alice.passwordHash())).isFalse();
      // a different password gives a different hash (and job)
      String other = body.replace(password, password + "2");
      HttpResponse<String> third = r.http().post("/api/v1/jobs", "application/json", other);
      assertThat(third.statusCode()).as(third.body()).isEqualTo(201);
      awaitJob(r.http(), json(third).get("id").asText(), "done");
      assertThat(r.images().lastSpec.rootPasswordHash()).isNotEqualTo(built.rootPasswordHash());
      // nor do the job API, its log or the database hold it
      assertThat(r.http().get("/api/v1/jobs/" + id).body()).doesNotContain(password);
      assertThat(r.http().get("/api/v1/jobs/" + id + "/log").body()).doesNotContain(password);
      assertThat(r.http().get("/api/v1/jobs/" + id).body()).doesNotContain(userPassword);
    }
    for (String secret : List.of(password, userPassword)) {
      byte[] needle = secret.getBytes(StandardCharsets.UTF_8);
      try (var files = java.nio.file.Files.walk(tmp)) {
        for (Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
          if (f.getFileName().toString().startsWith("server.db")
              || f.startsWith(settings.dataDir())) {
            byte[] b = java.nio.file.Files.readAllBytes(f);
            assertThat(indexOf(b, needle)).as("a password in %s", f).isEqualTo(-1);
          }
        }
      }
    }
    assertThat(java.nio.file.Files.size(settings.database())).isPositive();
  }

  static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  @Test
  void aSlowBuildDoesNotBlockDownloadsOrPages() throws Exception {
    ServerFixture.demoRepository(tmp.resolve("repo"), tmp);
    try (Running r = start(ServerFixture.settings(tmp).withWorkers(1), false)) {
      String id =
          json(r.http().post("/api/v1/jobs", "application/json", spec("slow"))).get("id").asText();
      assertThat(r.images().started.await(30, TimeUnit.SECONDS)).isTrue();
      // the only worker is busy: pages, the API and downloads still answer
      for (String p :
          List.of(
              "/",
              "/jobs",
              "/repo",
              "/status",
              "/api/v1/status",
              "/jobs/" + id,
              "/repo/refs/images/demo")) {
        assertThat(r.http().get(p).statusCode()).as(p).isEqualTo(200);
      }
      String demo = json(r.http().get("/api/v1/refs/images/demo")).get("snapshot").asText();
      HttpResponse<byte[]> dl =
          r.http().getBytes("/api/v1/snapshots/" + demo + "/download?format=tar");
      assertThat(dl.statusCode()).isEqualTo(200);
      assertThat(new String(dl.body(), StandardCharsets.ISO_8859_1)).contains("hello from v2");
      JsonNode status = json(r.http().get("/api/v1/status"));
      assertThat(status.get("running").asInt()).isEqualTo(1);
      assertThat(json(r.http().get("/api/v1/jobs/" + id)).get("state").asText())
          .isEqualTo("running");
      r.images().gate.countDown();
      awaitJob(r.http(), id, "done");
    }
  }

  @Test
  void jobsSurviveARestart() throws Exception {
    Settings settings = ServerFixture.settings(tmp).withWorkers(1);
    String a;
    String b;
    String c;
    try (Running r = start(settings, false)) {
      a = json(r.http().post("/api/v1/jobs", "application/json", spec("a"))).get("id").asText();
      assertThat(r.images().started.await(30, TimeUnit.SECONDS)).isTrue();
      b = json(r.http().post("/api/v1/jobs", "application/json", spec("b"))).get("id").asText();
      c =
          json(r.http().post("/api/v1/jobs", "application/json", spec("c", "curl")))
              .get("id")
              .asText();
      assertThat(json(r.http().get("/api/v1/jobs/" + b)).get("state").asText()).isEqualTo("queued");
    } // stopped while a runs and b, c wait
    try (Running r = start(settings, true)) {
      r.http().token = null; // reading is open
      JsonNode ja = json(r.http().get("/api/v1/jobs/" + a));
      assertThat(ja.get("state").asText()).isEqualTo("failed");
      assertThat(ja.get("error").asText())
          .contains("interrupted")
          .contains("Request the image again");
      awaitJob(r.http(), b, "done");
      JsonNode jc = awaitJob(r.http(), c, "done");
      assertThat(jc.get("snapshot").asText()).hasSize(64);
      HttpResponse<byte[]> dl = r.http().getBytes("/api/v1/jobs/" + c + "/download");
      String tar;
      try (var in = new GZIPInputStream(new ByteArrayInputStream(dl.body()))) {
        tar = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
      }
      assertThat(tar).contains("pkg-curl");
    }
  }

  @Test
  void createUrlAnswersWithTheImageOrTheJobUrlAndFailuresAreClear() throws Exception {
    try (Running r = start(ServerFixture.settings(tmp), true)) {
      HttpResponse<byte[]> img =
          r.http()
              .getBytes(
                  "/create?name=web&class=debian-bookworm&arch=amd64&filetype=tar.gz&group=core"
                      + "&group=base&package=openssh-server");
      assertThat(img.statusCode()).isEqualTo(200);
      assertThat(img.headers().firstValue("Content-Disposition").orElseThrow())
          .contains("web.tar.gz");
      String tar;
      try (var in = new GZIPInputStream(new ByteArrayInputStream(img.body()))) {
        tar = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
      }
      assertThat(tar).contains("pkg-openssh-server");
      assertThat(r.server().repository().refs().get("images/web")).isPresent();

      HttpResponse<String> async =
          r.http().get("/create?name=web2&class=debian-bookworm&filetype=tar&async=1");
      assertThat(async.statusCode()).isEqualTo(202);
      String url = async.body().trim();
      assertThat(async.headers().firstValue("Location")).hasValue(url);
      String id = url.substring(url.lastIndexOf('/') + 1);
      awaitJob(r.http(), id, "done");

      HttpResponse<String> failed =
          r.http().get("/create?name=broken&class=debian-bookworm&package=does-not-exist");
      ServerApiTest.assertProblem(failed, 422, "build-failed");
      assertThat(json(failed).get("detail").asText()).contains("does-not-exist");
      assertThat(r.server().repository().refs().get("images/broken")).isEmpty();
    }
  }

  @Test
  void requestFormsAndUploadBecomeJobs() throws Exception {
    try (Running r = start(ServerFixture.settings(tmp), true)) {
      String form =
          "mode=appliance&name=appl&class=debian-bookworm&arch=amd64&format=tar&group=base"
              + "&group=ssh-server&packages=curl+vim&services=ssh&hostname=h1"
              + "&files=%2Fetc%2Fmotd%3Dhello&firstboot=echo+first&delivery=async";
      Http anon = new Http(r.server().url());
      ServerApiTest.assertProblem(
          anon.post("/request", "application/x-www-form-urlencoded", form), 401, "unauthorized");
      HttpResponse<String> sent =
          r.http().post("/request", "application/x-www-form-urlencoded", form);
      assertThat(sent.statusCode()).as(sent.body()).isEqualTo(303);
      String loc = sent.headers().firstValue("Location").orElseThrow();
      assertThat(loc).startsWith("/jobs/");
      String id = loc.substring("/jobs/".length());
      JsonNode job = awaitJob(r.http(), id, "done");
      assertThat(job.get("format").asText()).isEqualTo("tar");
      JsonNode spec = OsfarmServer.JSON.readTree(r.server().jobs.get(id).orElseThrow().spec());
      assertThat(spec.get("groups").toString()).contains("base", "ssh-server");
      assertThat(spec.get("packages").toString()).contains("curl", "vim");
      assertThat(spec.get("services").toString()).contains("ssh");
      assertThat(spec.get("hostname").asText()).isEqualTo("h1");
      assertThat(spec.get("files").toString()).contains("/etc/motd", "hello");
      assertThat(spec.get("firstBoot").toString()).contains("echo first");

      String boundary = "----osfarm" + System.nanoTime();
      String xml =
          "<image name=\"uploaded\" class=\"debian-bookworm\"><package>curl</package></image>";
      String body =
          "--"
              + boundary
              + "\r\nContent-Disposition: form-data; name=\"spec\"; filename=\"u.xml\"\r\n"
              + "Content-Type: application/xml\r\n\r\n"
              + xml
              + "\r\n"
              + "--"
              + boundary
              + "\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\ntar.gz\r\n"
              + "--"
              + boundary
              + "--\r\n";
      HttpResponse<String> up =
          r.http().post("/upload", "multipart/form-data; boundary=" + boundary, body);
      assertThat(up.statusCode()).as(up.body()).isEqualTo(303);
      String upId = up.headers().firstValue("Location").orElseThrow().substring("/jobs/".length());
      assertThat(awaitJob(r.http(), upId, "done").get("name").asText()).isEqualTo("uploaded");

      String bad = body.replace("</image>", "");
      ServerApiTest.assertProblem(
          r.http().post("/upload", "multipart/form-data; boundary=" + boundary, bad),
          400,
          "invalid-spec");
    }
  }

  @Test
  void aFullQueueRefusesWithRetryAfterAndLogsAreServed() throws Exception {
    Settings settings = ServerFixture.settings(tmp).withWorkers(1).withMaxQueued(1);
    try (Running r = start(settings, false)) {
      String a =
          json(r.http().post("/api/v1/jobs", "application/json", spec("qa"))).get("id").asText();
      assertThat(r.images().started.await(30, TimeUnit.SECONDS)).isTrue();
      assertThat(r.http().post("/api/v1/jobs", "application/json", spec("qb")).statusCode())
          .isEqualTo(201);
      HttpResponse<String> full = r.http().post("/api/v1/jobs", "application/json", spec("qc"));
      ServerApiTest.assertProblem(full, 503, "queue-full");
      assertThat(full.headers().firstValue("Retry-After")).hasValue("60");
      assertThat(r.http().get("/api/v1/jobs/" + a + "/log").body()).contains("test build of qa");
      ServerApiTest.assertProblem(
          r.http().get("/api/v1/jobs/" + a + "/download"), 409, "not-ready");
      r.images().gate.countDown();
      awaitJob(r.http(), a, "done");
      assertThat(r.http().get("/api/v1/jobs/" + a + "/log").body()).contains("== done: snapshot");
    }
  }
}
