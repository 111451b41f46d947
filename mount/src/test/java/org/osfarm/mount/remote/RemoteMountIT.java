package org.osfarm.mount.remote;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.mount.Mount;
import org.osfarm.mount.MountOptions;
import org.osfarm.transfer.ObjectProtocol;
import org.osfarm.transfer.ProtocolHandler;
import org.osfarm.transfer.ProtocolResponse;
import org.osfarm.transfer.TransferServer;

/**
 * Real FUSE mounts of a real Debian image served by a real server on loopback: the view matches an
 * export; a killed server gives EIO for what is not cached while cached files keep working; a lying
 * server's bytes never reach a reader.
 */
@Tag("slow")
class RemoteMountIT {
  @TempDir static Path dir;
  static Repository repo;
  static Path export;
  static Digest snapshot;

  @BeforeAll
  static void publish() throws IOException {
    boolean fuse = Files.exists(Path.of("/dev/fuse"));
    if (!fuse && Programs.inCi()) {
      throw new AssertionError("/dev/fuse is missing; CI must run with FUSE available");
    }
    assumeTrue(fuse, "/dev/fuse is absent");
    Programs.require("fusermount3");
    // The JDK server leaves Nagle on by default; osfarm serve (Jetty) sets TCP_NODELAY.
    System.setProperty("sun.net.httpserver.nodelay", "true");
    repo = Repository.init(dir.resolve("repo"));
    try (TarSource s = TarSource.open(TestImages.bookwormMinbase())) {
      snapshot =
          repo.publish(s, "images/min", "minbase", Map.of(), ProgressListener.NONE).snapshot();
    }
    export = dir.resolve("export");
    repo.export(snapshot, List.of(), ExportFormat.DIR, export, ProgressListener.NONE);
  }

  @AfterAll
  static void close() {
    if (repo != null) {
      repo.close();
    }
  }

  private static TransferServer serve(ProtocolHandler h) throws IOException {
    return new TransferServer(new InetSocketAddress("127.0.0.1", 0), h, null);
  }

  private static MountOptions options(TransferServer s, String name) throws IOException {
    Path mp = Files.createDirectories(dir.resolve("mnt-" + name));
    return new MountOptions.Builder("http://127.0.0.1:" + s.address().getPort(), "images/min", mp)
        .cacheDir(dir.resolve("cache-" + name))
        .build();
  }

  @Test
  void aKilledServerGivesEioForUncachedFilesWhileCachedOnesStayReadable() throws Exception {
    TransferServer s = serve(new ObjectProtocol(repo, false));
    KillableRelay relay = new KillableRelay(s.address().getPort());
    Path mpKill = Files.createDirectories(dir.resolve("mnt-kill"));
    MountOptions o =
        new MountOptions.Builder("http://127.0.0.1:" + relay.port(), "images/min", mpKill)
            .cacheDir(dir.resolve("cache-kill"))
            .build();
    try (Mount m = Mount.start(o)) {
      Path mp = o.mountpoint();
      for (String f : List.of("etc/passwd", "usr/bin/dpkg", "usr/lib/apt/methods/http")) {
        assertThat(Files.readAllBytes(mp.resolve(f)))
            .isEqualTo(Files.readAllBytes(export.resolve(f)));
      }
      assertThat(Programs.run(null, "chroot", mp.toString(), "/bin/sh", "-c", "apt-get --version"))
          .startsWith("apt ");
      assertThat(m.source().bytesFetched()).isPositive();

      relay.kill(); // as if the server process were killed: connections reset, port closed

      // cached: still there, byte for byte
      assertThat(Files.readAllBytes(mp.resolve("usr/bin/dpkg")))
          .isEqualTo(Files.readAllBytes(export.resolve("usr/bin/dpkg")));
      // not cached (the directory listing is, the content is not): an I/O error, never bytes
      Path uncached = mp.resolve("usr/bin/perl");
      assertThat(Files.exists(uncached)).isTrue();
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> Files.readAllBytes(uncached))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("Input/output error");
      // within one read timeout (30 s) and a few quick retries, not the three timeouts of
      // three attempts: a silent server is not asked again for the same read
      assertThat(java.time.Duration.ofNanos(System.nanoTime() - t0))
          .isLessThan(java.time.Duration.ofSeconds(40));
      // and the mount is still there and usable
      assertThat(Files.readString(mp.resolve("etc/passwd")))
          .isEqualTo(Files.readString(export.resolve("etc/passwd")));
    } finally {
      relay.close();
      s.close();
    }
  }

  @Test
  void aLyingServersBytesNeverReachAReader() throws Exception {
    Entry victim = repo.lookupFile(snapshot, "usr/bin/dpkg".getBytes());
    // the object the file's first bytes come from: the file itself, or its first chunk
    Digest id;
    byte[] good;
    try (ObjectStore.Reader rd = repo.store().newReader()) {
      id =
          victim.chunked()
              ? ObjectCodec.decodeChunkList(
                      victim.content(), rd.read(victim.content(), ObjectType.CHUNKLIST))
                  .chunks()
                  .getFirst()
                  .id()
              : victim.content();
      good = rd.read(id, ObjectType.BLOB);
    }
    ObjectProtocol real = new ObjectProtocol(repo, false);
    ProtocolHandler lying =
        r -> {
          if (r.path().equals("/objects/" + id.hex())) {
            byte[] b = good.clone();
            b[100] ^= 1;
            return new ProtocolResponse(
                200, "application/octet-stream", Map.of(), b.length, out -> out.write(b));
          }
          return real.handle(r);
        };
    try (TransferServer s = serve(lying)) {
      MountOptions o = options(s, "lying");
      try (Mount m = Mount.start(o)) {
        Path mp = o.mountpoint();
        assertThat(Files.readAllBytes(mp.resolve("etc/passwd")))
            .isEqualTo(Files.readAllBytes(export.resolve("etc/passwd")));
        assertThatThrownBy(() -> Files.readAllBytes(mp.resolve("usr/bin/dpkg")))
            .isInstanceOf(IOException.class)
            .hasMessageContaining("Input/output error");
        // asked again: fetched again, rejected again (nothing was kept)
        assertThatThrownBy(() -> Files.readAllBytes(mp.resolve("usr/bin/dpkg")))
            .isInstanceOf(IOException.class);
      }
    }
  }
}
