package org.osfarm.mount.rebase;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.InvalidInputException;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;

/**
 * A real rebase: a Debian minbase image, an upstream update made with real tools ({@code useradd
 * --root}, edits under /usr and /etc, a new group member), local changes made in a chroot on a real
 * kernel overlayfs mount over the base, then the rebase, and the result checked in a chroot on an
 * overlay over the new snapshot.
 */
@Tag("slow")
class RebaseIT {
  @TempDir Path tmp;

  private static final String LOCAL_BASHRC = "# local bashrc\n";
  private static final String LOCAL_MOTD = "local motd\n";
  private static final String LOCAL_HOSTNAME = "local-host\n";
  private static final String UPSTREAM_LINE = "# upstream change\n";

  @Test
  void localChangesMoveOntoANewerSnapshot() throws Exception {
    for (String p : List.of("useradd", "usermod", "chroot", "mount", "umount", "setfacl")) {
      Programs.require(p);
    }
    Programs.require("getfacl");
    Programs.require("setcap");
    boolean root = "0".equals(Programs.run(null, "id", "-u").strip());
    if (Programs.inCi()) {
      assertThat(root).as("overlayfs mounts and chown need root").isTrue();
    }
    assumeTrue(root, "needs root (overlayfs, chown)");

    Path repoDir = tmp.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      // ---- base and onto snapshots
      Digest base;
      try (TarSource src = TarSource.open(TestImages.bookwormMinbase())) {
        base = repo.publish(src, "images/test", "base", Map.of(), ProgressListener.NONE).snapshot();
      }
      Path scratch = tmp.resolve("scratch");
      Path lower = scratch.resolve("lower");
      Files.createDirectories(scratch);
      repo.export(base, List.of(), ExportFormat.DIR, lower, ProgressListener.NONE);
      Path up = tmp.resolve("upstream-tree");
      Programs.run(null, "cp", "-a", lower.toString(), up.toString());
      String r = up.toString();
      Programs.run(null, "useradd", "--root", r, "--system", "--no-create-home", "upsvc");
      Programs.run(null, "useradd", "--root", r, "-m", "-s", "/bin/bash", "upuser");
      Programs.run(null, "usermod", "--root", r, "-a", "-G", "users", "upuser");
      Files.writeString(up.resolve("etc/motd"), "upstream motd\n");
      append(up.resolve("usr/share/base-files/dot.bashrc"), UPSTREAM_LINE);
      append(up.resolve("usr/share/base-files/dot.profile"), UPSTREAM_LINE);
      Files.writeString(up.resolve("usr/share/doc/passwd/UPSTREAM"), "new upstream doc\n");
      String upstreamBashrc = Files.readString(up.resolve("usr/share/base-files/dot.bashrc"));
      String upstreamProfile = Files.readString(up.resolve("usr/share/base-files/dot.profile"));
      Digest onto;
      try (DirectorySource src = new DirectorySource(up, ProgressListener.NONE)) {
        onto = repo.publish(src, "images/test", "onto", Map.of(), ProgressListener.NONE).snapshot();
      }
      assertThat(passwdLine(up, "upsvc")).contains(":999:");
      assertThat(passwdLine(up, "upuser")).contains(":1000:");

      // ---- local changes in a chroot on a real overlay over base
      Files.createDirectories(scratch.resolve("upper"));
      Files.createDirectories(scratch.resolve("work"));
      Files.writeString(
          scratch.resolve(ScratchDir.PROPERTIES),
          "base=" + base.hex() + "\nsource=" + repoDir + "\nref=images/test\n");
      Path m = tmp.resolve("mnt");
      Files.createDirectories(m);
      mountOverlay(scratch, lower, m);
      String rootHash;
      Map<String, String> modes = new TreeMap<>();
      try {
        chroot(m, "useradd -m -s /bin/bash alice");
        chroot(m, "useradd --system --no-create-home localsvc");
        chroot(m, "usermod -a -G users alice");
        chroot(m, "echo root:local-secret | chpasswd");
        chroot(
            m,
            "echo '"
                + LOCAL_MOTD.strip()
                + "' > /etc/motd; echo "
                + LOCAL_HOSTNAME.strip()
                + " > /etc/hostname");
        Files.writeString(m.resolve("usr/share/base-files/dot.bashrc"), LOCAL_BASHRC);
        chroot(m, "rm /usr/share/base-files/info.dir /usr/share/base-files/dot.profile");
        // directories replaced as a whole (opaque in the upper directory); upstream changed the
        // second one
        for (String d : List.of("/usr/share/doc/apt", "/usr/share/doc/passwd")) {
          chroot(m, "rm -r " + d + " && mkdir " + d + " && echo mine > " + d + "/MINE");
        }
        chroot(
            m,
            "echo tool > /usr/local/bin/alicetool && chown alice:alice /usr/local/bin/alicetool"
                + " && chmod 4755 /usr/local/bin/alicetool && echo data > /home/alice/notes"
                + " && chown alice:alice /home/alice/notes && mkdir -p /srv /var/lib/localsvc"
                + " && echo shared > /srv/shared.txt && echo s > /var/lib/localsvc/state"
                + " && chown localsvc:localsvc /var/lib/localsvc/state");
        Programs.run(null, "setcap", "cap_net_bind_service+ep", m + "/usr/local/bin/alicetool");
        Programs.run(null, "setfacl", "-m", "u:1000:rw,g:999:r", m + "/srv/shared.txt");
        assertThat(chroot(m, "id -u alice").strip()).isEqualTo("1000");
        assertThat(chroot(m, "id -u localsvc").strip()).isEqualTo("999");
        rootHash = shadowHash(m, "root");
        for (String f : List.of("/home/alice", "/home/alice/notes", "/usr/local/bin/alicetool")) {
          modes.put(f, stat(m, f).split(" ")[1]);
        }
        assertThat(modes.get("/usr/local/bin/alicetool")).isEqualTo("4755");

        // refuses while mounted
        assertThatThrownBy(() -> Rebase.rebase(repo, scratch, "images/test", true))
            .isInstanceOf(InvalidInputException.class)
            .hasMessageContaining("in use");
      } finally {
        Programs.run(null, "umount", m.toString());
      }
      Path upper = scratch.resolve("upper");
      assertThat(UpperFs.attrs(upper.resolve("usr/share/base-files/info.dir")).isWhiteout())
          .isTrue();
      assertThat(UpperFs.isOpaque(upper.resolve("usr/share/doc/apt"))).isTrue();

      // ---- dry run: reports, changes nothing
      Map<String, String> before = listing(upper);
      String props = Files.readString(scratch.resolve(ScratchDir.PROPERTIES));
      RebaseReport dry = Rebase.rebase(repo, scratch, "images/test", true);
      assertThat(listing(upper)).isEqualTo(before);
      assertThat(Files.readString(scratch.resolve(ScratchDir.PROPERTIES))).isEqualTo(props);
      assertThat(dry.backup()).isNull();

      // ---- the rebase
      RebaseReport rep = Rebase.rebase(repo, scratch, "images/test", false);
      assertThat(rep.conflicts())
          .extracting(c -> c.path() + " " + c.rule() + " " + c.winner())
          .isEqualTo(
              dry.conflicts().stream()
                  .map(c -> c.path() + " " + c.rule() + " " + c.winner())
                  .toList());
      assertThat(rep.remaps()).isEqualTo(dry.remaps());
      assertThat(rep.base()).isEqualTo(base);
      assertThat(rep.onto()).isEqualTo(onto);
      assertThat(Files.readString(scratch.resolve(ScratchDir.PROPERTIES)))
          .contains("base=" + onto.hex(), "source=" + repoDir, "ref=images/test");
      assertThat(conflict(rep, "/usr/share/base-files/dot.bashrc").winner()).isEqualTo("upstream");
      assertThat(conflict(rep, "/usr/share/base-files/dot.profile").winner()).isEqualTo("upstream");
      assertThat(conflict(rep, "/etc/motd").winner()).isEqualTo("local");
      assertThat(conflict(rep, "/usr/share/doc/passwd").detail())
          .contains("replaced locally", "inside it");
      assertThat(rep.conflicts()).noneMatch(c -> c.path().startsWith("/usr/share/doc/apt"));
      assertThat(rep.conflicts()).noneMatch(c -> c.path().equals("/etc/hostname"));
      assertThat(rep.conflicts())
          .filteredOn(c -> c.rule().equals("id-remap"))
          .extracting(Conflict::detail)
          .anyMatch(d -> d.contains("alice") && d.contains("upuser"))
          .anyMatch(d -> d.contains("localsvc") && d.contains("upsvc"));
      assertThat(rep.remaps())
          .extracting(x -> x.kind() + " " + x.name() + " " + x.from() + "->" + x.to())
          .containsExactlyInAnyOrder(
              "uid alice 1000->1001",
              "gid alice 1000->1001",
              "uid localsvc 999->998",
              "gid localsvc 999->998");
      assertThat(rep.merged())
          .contains("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/subuid", "/etc/subgid");
      assertThat(conflict(rep, "/etc/subuid").rule()).isEqualTo("id-remap");
      assertThat(Files.readString(rep.backup().resolve("upper/usr/share/base-files/dot.bashrc")))
          .isEqualTo(LOCAL_BASHRC);
      assertThat(rep.toJson()).contains("\"winner\":\"upstream\"", "\"name\":\"alice\"");

      // ---- the result, on an overlay over an export of onto
      Path lower2 = tmp.resolve("onto-lower");
      repo.export(onto, List.of(), ExportFormat.DIR, lower2, ProgressListener.NONE);
      mountOverlay(scratch, lower2, m);
      try {
        assertThat(chroot(m, "id alice").strip())
            .isEqualTo("uid=1001(alice) gid=1001(alice) groups=1001(alice),100(users)");
        assertThat(chroot(m, "id upuser").strip())
            .isEqualTo("uid=1000(upuser) gid=1000(upuser) groups=1000(upuser),100(users)");
        assertThat(chroot(m, "getent passwd localsvc")).contains(":998:998:");
        assertThat(chroot(m, "getent passwd upsvc")).contains(":999:999:");
        assertThat(chroot(m, "getent group users").strip()).isEqualTo("users:x:100:upuser,alice");
        assertThat(chroot(m, "getent group localsvc").strip()).isEqualTo("localsvc:x:998:");
        assertThat(shadowHash(m, "root")).isEqualTo(rootHash);
        assertThat(shadowHash(m, "upuser")).isNotNull();
        for (Map.Entry<String, String> e : modes.entrySet()) {
          assertThat(stat(m, e.getKey())).isEqualTo("1001:1001 " + e.getValue());
        }
        assertThat(Programs.run(null, "getcap", m + "/usr/local/bin/alicetool"))
            .contains("cap_net_bind_service");
        assertThat(stat(m, "/var/lib/localsvc/state")).isEqualTo("998:998 644");
        assertThat(Programs.run(null, "getfacl", "-n", "-p", m + "/srv/shared.txt"))
            .contains("user:1001:rw-", "group:998:r--")
            .doesNotContain("user:1000:", "group:999:");
        assertThat(Files.readString(m.resolve("etc/motd"))).isEqualTo(LOCAL_MOTD);
        assertThat(Files.readString(m.resolve("etc/hostname"))).isEqualTo(LOCAL_HOSTNAME);
        assertThat(Files.readString(m.resolve("usr/share/base-files/dot.bashrc")))
            .isEqualTo(upstreamBashrc);
        assertThat(Files.readString(m.resolve("usr/share/base-files/dot.profile")))
            .isEqualTo(upstreamProfile);
        assertThat(m.resolve("usr/share/base-files/info.dir")).doesNotExist();
        try (var l = Files.list(m.resolve("usr/share/doc/apt"))) {
          assertThat(l.map(x -> x.getFileName().toString())).containsExactly("MINE");
        }
        assertThat(m.resolve("usr/share/doc/passwd/UPSTREAM")).hasContent("new upstream doc");
        assertThat(m.resolve("usr/share/doc/passwd/copyright")).exists();
        assertThat(m.resolve("usr/share/doc/passwd/MINE")).doesNotExist();
        assertThat(m.resolve("home/upuser")).isDirectory();
        // both sides' useradd took the first subordinate range: upstream keeps it, alice moves
        assertThat(Files.readAllLines(m.resolve("etc/subuid")))
            .containsExactly("upuser:100000:65536", "alice:165536:65536");
        assertThat(Files.readAllLines(m.resolve("etc/subgid")))
            .containsExactly("upuser:100000:65536", "alice:165536:65536");
      } finally {
        Programs.run(null, "umount", m.toString());
      }

      // ---- crash safety: pretend the rebase died before its last step; rollback restores all
      Path journal = rep.backup().resolve(Journal.FILE);
      List<String> lines = Files.readAllLines(journal);
      assertThat(lines.get(lines.size() - 1)).isEqualTo("done");
      Files.write(journal, lines.subList(0, lines.size() - 1));
      assertThatThrownBy(() -> Rebase.rebase(repo, scratch, "images/test", true))
          .isInstanceOf(InvalidInputException.class)
          .hasMessageContaining("--rollback");
      assertThat(Rebase.rollback(scratch)).containsExactly(rep.backup());
      assertThat(listing(upper)).isEqualTo(before);
      assertThat(Files.readString(scratch.resolve(ScratchDir.PROPERTIES)))
          .contains("base=" + base.hex());
    }
  }

  private static Conflict conflict(RebaseReport r, String path) {
    return r.conflicts().stream()
        .filter(c -> c.path().equals(path))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no conflict for " + path + ": " + r.conflicts()));
  }

  private static void append(Path p, String s) throws IOException {
    Files.writeString(p, Files.readString(p) + s);
  }

  private static String passwdLine(Path rootDir, String user) throws IOException {
    return Files.readAllLines(rootDir.resolve("etc/passwd")).stream()
        .filter(l -> l.startsWith(user + ":"))
        .findFirst()
        .orElse("");
  }

  private static String shadowHash(Path rootDir, String user) throws IOException {
    return Files.readAllLines(rootDir.resolve("etc/shadow")).stream()
        .filter(l -> l.startsWith(user + ":"))
        .map(l -> l.split(":")[1])
        .findFirst()
        .orElse(null);
  }

  private static void mountOverlay(Path scratch, Path lower, Path mnt) throws IOException {
    String opts =
        "lowerdir="
            + lower
            + ",upperdir="
            + scratch.resolve("upper")
            + ",workdir="
            + scratch.resolve("work")
            + ",redirect_dir=off,metacopy=off,index=off,xino=off";
    Programs.run(null, "mount", "-t", "overlay", "overlay", "-o", opts, mnt.toString());
  }

  private static String chroot(Path root, String script) throws IOException {
    return Programs.run(
        null,
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "chroot",
        root.toString(),
        "/bin/sh",
        "-c",
        script);
  }

  private static String stat(Path root, String path) throws IOException {
    return Programs.run(null, "stat", "-c", "%u:%g %a", root + path).strip();
  }

  /** Every entry under {@code dir}: type, mode, owner, device, content hash, link, xattrs. */
  private static Map<String, String> listing(Path dir) throws Exception {
    Map<String, String> out = new TreeMap<>();
    list(dir, "", out);
    return out;
  }

  private static void list(Path dir, String rel, Map<String, String> out) throws Exception {
    List<Path> children = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      ds.forEach(children::add);
    }
    for (Path c : children) {
      String path = rel + "/" + c.getFileName();
      UpperFs.Attrs a = UpperFs.attrs(c);
      StringBuilder sb =
          new StringBuilder(
              Integer.toOctalString(a.mode()) + " " + a.uid() + ":" + a.gid() + " " + a.rdev());
      if (Files.isRegularFile(c, LinkOption.NOFOLLOW_LINKS)) {
        MessageDigest md = Digest.newMessageDigest();
        try (InputStream in = Files.newInputStream(c)) {
          md.update(in.readAllBytes());
        }
        sb.append(' ').append(Digest.of(md).hex());
      } else if (Files.isSymbolicLink(c)) {
        sb.append(" -> ").append(Files.readSymbolicLink(c));
      }
      if (!Files.isSymbolicLink(c)) {
        for (byte[][] kv : UpperFs.xattrs(c)) {
          sb.append(' ')
              .append(new String(kv[0], StandardCharsets.UTF_8))
              .append('=')
              .append(HexFormat.of().formatHex(kv[1]));
        }
      }
      out.put(path, sb.toString());
      if (a.isDir()) {
        list(c, path, out);
      }
    }
  }
}
