package org.osfarm.server;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;

/** Real repositories and real servers on loopback for tests. */
final class ServerFixture {
  private ServerFixture() {}

  static Settings settings(Path root) {
    return new Settings(
        new InetSocketAddress("127.0.0.1", 0),
        root.resolve("repo"),
        root.resolve("server.db"),
        root.resolve("data"),
        root.resolve("build-cache"),
        true,
        true,
        2,
        100,
        64 * 1024,
        Duration.ofMinutes(2),
        1L << 30);
  }

  static final String STATUS_V1 =
      """
      Package: hello
      Status: install ok installed
      Architecture: amd64
      Version: 2.10-3
      Description: example package

      Package: base-files
      Status: install ok installed
      Architecture: amd64
      Version: 12.4
      Description: base files

      """;

  static final String STATUS_V2 =
      """
      Package: hello
      Status: install ok installed
      Architecture: amd64
      Version: 2.10-4
      Description: example package

      Package: base-files
      Status: install ok installed
      Architecture: amd64
      Version: 12.4
      Description: base files

      Package: curl
      Status: install ok installed
      Architecture: amd64
      Version: 7.88.1-10
      Description: command line tool for transferring data with URL syntax

      """;

  /**
   * Publishes two versions of {@code images/demo} into the repository at {@code repoDir}: v1 with
   * etc/motd, a 300 KiB binary file and a dpkg status; v2 changes motd, adds a file and curl.
   */
  static void demoRepository(Path repoDir, Path work) throws IOException {
    Path t = work.resolve("tree");
    Files.createDirectories(t.resolve("etc"));
    Files.createDirectories(t.resolve("var/lib/dpkg"));
    Files.createDirectories(t.resolve("usr/bin"));
    Files.writeString(t.resolve("etc/motd"), "hello from v1\n");
    byte[] big = new byte[300 * 1024];
    new java.util.Random(42).nextBytes(big);
    Files.write(t.resolve("usr/bin/big"), big);
    Files.writeString(t.resolve("var/lib/dpkg/status"), STATUS_V1);
    try (Repository repo = Repository.init(repoDir)) {
      repo.publish(
          new DirectorySource(t, ProgressListener.NONE),
          "images/demo",
          "v1",
          Map.of(),
          ProgressListener.NONE);
      Files.writeString(t.resolve("etc/motd"), "hello from v2\n");
      Files.writeString(t.resolve("usr/bin/curl"), "#!/bin/sh\necho curl\n");
      Files.writeString(t.resolve("var/lib/dpkg/status"), STATUS_V2);
      repo.publish(
          new DirectorySource(t, ProgressListener.NONE),
          "images/demo",
          "v2",
          Map.of(),
          ProgressListener.NONE);
    }
  }
}
