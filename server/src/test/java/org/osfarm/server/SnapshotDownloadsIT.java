package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;

/**
 * A real Debian image in the repository, downloaded through the service as raw ext4, qcow2 and an
 * OCI archive: each checked by its own tool (e2fsck, debugfs, qemu-img, skopeo), made once for
 * concurrent identical requests, served with digests and Range, without blocking other requests.
 */
@Tag("slow")
class SnapshotDownloadsIT {
  @TempDir static Path tmp;
  static OsfarmServer server;
  static Http http;
  static Digest snapshot;

  @BeforeAll
  static void start() throws Exception {
    Programs.require("mmdebstrap");
    Programs.require("e2fsck");
    Programs.require("debugfs");
    Programs.require("qemu-img");
    Programs.require("skopeo");
    // conversions run mke2fs in the builder's user namespace: its root must reach the work dir
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path image = TestImages.bookwormMinbase();
    try (Repository repo = Repository.init(tmp.resolve("repo"));
        TarSource src = TarSource.open(image)) {
      snapshot =
          repo.publish(src, "images/minbase", "minbase", Map.of(), ProgressListener.NONE)
              .snapshot();
    }
    server = new OsfarmServer(ServerFixture.settings(tmp)).start();
    http = new Http(server.url());
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.stop();
    }
  }

  static int downloads;

  /** Downloads to a file of its own (images do not fit the test's heap). */
  static synchronized Path target(String format) {
    return tmp.resolve("download-" + downloads++ + "." + format);
  }

  static CompletableFuture<HttpResponse<Path>> download(String format, String... headers) {
    Path to = target(format);
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            var b =
                http.req("/api/v1/snapshots/" + snapshot.hex() + "/download?format=" + format)
                    .timeout(java.time.Duration.ofMinutes(10))
                    .GET();
            for (int i = 0; i < headers.length; i += 2) {
              b.header(headers[i], headers[i + 1]);
            }
            return Http.CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofFile(to));
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        },
        Thread::startVirtualThread);
  }

  static String sha256(Path file) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (var in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 20];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  static byte[] slice(Path file, long from, int length) throws Exception {
    try (var ch = java.nio.channels.FileChannel.open(file)) {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(length);
      while (b.hasRemaining() && ch.read(b, from + b.position()) > 0) {}
      return b.array();
    }
  }

  static double metric(String name) throws Exception {
    for (String line : http.get("/metrics").body().split("\n")) {
      if (line.startsWith(name + " ")) {
        return Double.parseDouble(line.substring(name.length() + 1));
      }
    }
    throw new AssertionError("no metric " + name);
  }

  @Test
  void everyFormatOnceVerifiedByItsToolWithRangeAndWithoutBlocking() throws Exception {
    // three identical requests per format, all at once
    List<String> formats = List.of("raw", "qcow2", "oci");
    List<List<CompletableFuture<HttpResponse<Path>>>> all = new ArrayList<>();
    for (String f : formats) {
      List<CompletableFuture<HttpResponse<Path>>> same = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        same.add(download(f));
      }
      all.add(same);
    }
    // while the conversions run, pages, the API and a tar download answer
    for (String p : List.of("/", "/repo", "/api/v1/status", "/api/v1/images")) {
      assertThat(http.get(p).statusCode()).as(p).isEqualTo(200);
    }
    assertThat(all.stream().flatMap(List::stream).anyMatch(f -> !f.isDone()))
        .as("a conversion still running while the other requests were answered")
        .isTrue();

    for (int i = 0; i < formats.size(); i++) {
      String format = formats.get(i);
      Path first = null;
      String firstSha = null;
      for (CompletableFuture<HttpResponse<Path>> f : all.get(i)) {
        HttpResponse<Path> r = f.join();
        assertThat(r.statusCode())
            .as(format + ": " + (Files.size(r.body()) < 4096 ? Files.readString(r.body()) : ""))
            .isEqualTo(200);
        String sha = sha256(r.body());
        assertThat(r.headers().firstValue("ETag")).hasValue("\"" + sha + "\"");
        assertThat(r.headers().firstValue("Repr-Digest"))
            .hasValue(
                "sha-256=:"
                    + Base64.getEncoder().encodeToString(HexFormat.of().parseHex(sha))
                    + ":");
        assertThat(r.headers().firstValue("Content-Disposition").orElseThrow())
            .contains(snapshot.shortHex(12) + "." + (format.equals("oci") ? "oci.tar" : format));
        if (first == null) {
          first = r.body();
          firstSha = sha;
        } else {
          assertThat(sha).as(format + " bodies equal").isEqualTo(firstSha);
          Files.delete(r.body());
        }
      }
      verify(format, first);

      // resume: the second half by Range equals the file's second half
      long size = Files.size(first);
      long half = size / 2;
      HttpResponse<Path> part = download(format, "Range", "bytes=" + half + "-").join();
      assertThat(part.statusCode()).isEqualTo(206);
      assertThat(part.headers().firstValue("Content-Range"))
          .hasValue("bytes " + half + "-" + (size - 1) + "/" + size);
      assertThat(Files.size(part.body())).isEqualTo(size - half);
      for (long at : new long[] {0, (size - half) / 2, size - half - 4096}) {
        assertThat(slice(part.body(), at, 4096)).isEqualTo(slice(first, half + at, 4096));
      }
      Files.delete(part.body());
      Files.delete(first);
    }
    // one conversion per format, though each was asked for three times (and once more by Range)
    assertThat(metric("osfarm_exports_written_total")).isEqualTo(3.0);
    assertThat(
            http.getBytes("/api/v1/snapshots/" + snapshot.hex() + "/download?format=dir")
                .statusCode())
        .isEqualTo(400);
  }

  /** Each format's own tool accepts the file, and the content is the snapshot's. */
  static void verify(String format, Path file) throws Exception {
    String osRelease;
    try (var in =
        server
            .repository()
            .openContent(
                server
                    .repository()
                    .lookupFile(snapshot, "etc/debian_version".getBytes(StandardCharsets.UTF_8)))) {
      osRelease = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    switch (format) {
      case "raw" -> {
        Programs.run(tmp, "e2fsck", "-fn", file.toString());
        assertThat(Programs.run(tmp, "debugfs", "-R", "cat /etc/debian_version", file.toString()))
            .isEqualTo(osRelease);
      }
      case "qcow2" -> {
        assertThat(Programs.run(tmp, "qemu-img", "check", file.toString())).contains("No errors");
        assertThat(Programs.run(tmp, "qemu-img", "info", file.toString()))
            .contains("file format: qcow2");
        // the disk inside is the same ext4 file system
        Path raw = tmp.resolve("from-qcow2.raw");
        Programs.run(
            tmp,
            "qemu-img",
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            file.toString(),
            raw.toString());
        Programs.run(tmp, "e2fsck", "-fn", raw.toString());
        assertThat(Programs.run(tmp, "debugfs", "-R", "cat /etc/debian_version", raw.toString()))
            .isEqualTo(osRelease);
        Files.delete(raw);
      }
      case "oci" -> {
        String inspect = Programs.run(tmp, "skopeo", "inspect", "oci-archive:" + file);
        assertThat(inspect).contains("\"Os\": \"linux\"").contains("\"Layers\"");
        // copy it out and find the file in the layer
        Path dir = tmp.resolve("oci-dir");
        Programs.run(tmp, "skopeo", "copy", "oci-archive:" + file, "dir:" + dir);
        String found =
            Programs.sh(
                dir,
                "for f in *; do tar -xzOf \"$f\" --wildcards '*etc/debian_version' 2>/dev/null"
                    + " || true; done");
        assertThat(found).isEqualTo(osRelease);
      }
      default -> throw new AssertionError(format);
    }
  }
}
