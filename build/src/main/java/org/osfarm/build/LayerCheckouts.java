package org.osfarm.build;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;

/**
 * Persistent checkouts of layer snapshots, the read-only lower directories of the overlays later
 * layers are built in.
 *
 * <p>Layout: {@code CACHE/checkouts/<layer key>/root} is the layer's tree without {@code /dev}
 * contents, {@code .../snapshot} names the snapshot it holds and appears only once the tree is
 * complete. The tree is unpacked by tar inside a build user namespace, so its files belong to the
 * ids the namespace maps to the image's owners (as root: root's subordinate range, e.g. host uid
 * 100000 for the image's root): inside the next build's namespace they look exactly as in the
 * image. A checkout is made once and shared, read-only, by every build on that layer, concurrent
 * ones included (overlayfs never writes to a lower directory). Deleting the directory when no build
 * runs is always safe; the next build on that layer makes it again.
 */
final class LayerCheckouts {
  private final Path dir;
  private final Repository repo;
  private final KeyLocks locks;

  LayerCheckouts(Path cacheDir, Repository repo, KeyLocks locks) {
    this.dir = cacheDir.resolve("checkouts");
    this.repo = repo;
    this.locks = locks;
  }

  /** The checkout of {@code snapshot}, the layer {@code key}'s tree, made now if missing. */
  Path checkout(Digest key, Digest snapshot, BuildListener l) throws IOException {
    Path home = dir.resolve(key.hex());
    Path root = home.resolve("root");
    Path marker = home.resolve("snapshot");
    if (holds(marker, snapshot)) {
      return root;
    }
    try (KeyLocks.Held h = locks.lock("checkout-" + key.hex())) {
      if (holds(marker, snapshot)) {
        return root;
      }
      long t0 = System.nanoTime();
      Files.createDirectories(dir);
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
      if (Files.exists(home)) {
        ImageBuilder.deleteTree(home); // another snapshot of the key (the cache was rebuilt)
      }
      Path tmp = Files.createTempDirectory(dir, key.shortHex(12) + "-");
      boolean ok = false;
      try {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        ImageBuilder.spreadInodes(tmp); // the tree in a block group of its own
        Path t = tmp.resolve("root");
        Files.createDirectory(t);
        Userns.own(t);
        List<String> cmd =
            Userns.run(
                List.of(
                    "tar",
                    "-C",
                    t.toString(),
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "--exclude=./dev/*",
                    "-xpf",
                    "-"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        Thread out =
            Thread.ofVirtual()
                .start(
                    () -> {
                      try {
                        byte[] b = p.getInputStream().readAllBytes();
                        if (b.length > 0) {
                          l.log(new String(b, StandardCharsets.UTF_8).strip());
                        }
                      } catch (IOException e) {
                        // the process is gone
                      }
                    });
        try (OutputStream os = p.getOutputStream()) {
          repo.exportTar(snapshot, List.of(), ExportFormat.TAR, os, ProgressListener.NONE);
        }
        int rc = p.waitFor();
        out.join();
        if (rc != 0) {
          throw new BuildException(
              "checking out layer " + key.shortHex(12) + " failed: tar exit " + rc);
        }
        Files.writeString(tmp.resolve("snapshot"), snapshot.hex() + "\n");
        Files.move(tmp, home);
        ok = true;
        l.step(
            String.format(
                "layer %s: checked out for reuse (%.1f s)",
                key.shortHex(12), (System.nanoTime() - t0) / 1e9));
        return root;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BuildException("interrupted", e);
      } finally {
        if (!ok) {
          ImageBuilder.deleteTree(tmp);
        }
      }
    }
  }

  private static boolean holds(Path marker, Digest snapshot) {
    try {
      return Files.exists(marker) && Files.readString(marker).strip().equals(snapshot.hex());
    } catch (IOException e) {
      return false;
    }
  }
}
