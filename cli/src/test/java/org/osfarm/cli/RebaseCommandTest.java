package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.osfarm.cli.CliTest.ok;
import static org.osfarm.cli.CliTest.osfarm;
import static org.osfarm.cli.CliTest.publish;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code osfarm rebase} on a small scratch directory whose upper directory was written by hand (the
 * real overlayfs and account merge are in the mount module's RebaseIT).
 */
class RebaseCommandTest {
  @TempDir Path dir;

  private static void write(Path p, String s) throws IOException {
    Files.createDirectories(p.getParent());
    Files.writeString(p, s);
  }

  @Test
  void rebaseReportsAndAppliesThePolicy() throws IOException {
    Path repo = dir.resolve("repo");
    Path tree = dir.resolve("tree");
    write(tree.resolve("etc/motd"), "base motd\n");
    write(tree.resolve("etc/hostname"), "base\n");
    write(tree.resolve("usr/share/doc.txt"), "doc v1\n");
    write(tree.resolve("usr/lib/keep"), "keep\n");
    String base = publish(repo, tree.toString(), "images/x");
    Files.writeString(tree.resolve("etc/motd"), "upstream motd\n");
    Files.writeString(tree.resolve("usr/share/doc.txt"), "doc v2\n");
    Files.setPosixFilePermissions(
        tree.resolve("usr/lib"), PosixFilePermissions.fromString("rwx------"));
    String onto = publish(repo, tree.toString(), "images/x");

    Path scratch = dir.resolve("scratch");
    Path upper = scratch.resolve("upper");
    write(upper.resolve("etc/motd"), "local motd\n");
    write(upper.resolve("etc/hostname"), "local\n");
    write(upper.resolve("usr/share/doc.txt"), "local doc\n");
    write(upper.resolve("usr/lib/new"), "new\n");
    Files.setPosixFilePermissions(
        upper.resolve("usr/lib"), PosixFilePermissions.fromString("rwxr-xr-x"));
    write(
        scratch.resolve("osfarm-scratch.properties"),
        "base=" + base + "\nsource=" + repo + "\nref=images/x\n");

    CliTest.Result dry =
        ok(osfarm(repo, "rebase", scratch.toString(), "--onto", "images/x", "--dry-run", "--json"));
    assertThat(dry.out())
        .contains(
            "\"dryRun\":true",
            "\"path\":\"/etc/motd\",\"rule\":\"local-wins-etc-var\",\"winner\":\"local\"",
            "\"path\":\"/usr/share/doc.txt\",\"rule\":\"upstream-wins\",\"winner\":\"upstream\"")
        .doesNotContain("/etc/hostname", "/usr/lib/new");
    assertThat(upper.resolve("usr/share/doc.txt")).hasContent("local doc");

    // no --repo: the scratch directory's source names the repository
    CliTest.Result r = ok(CliTest.run("rebase", scratch.toString(), "--onto", "images/x"));
    assertThat(r.out())
        .contains(
            "rebased " + scratch,
            "local changes: 4 (3 kept, 1 dropped)",
            "conflicts (2):",
            "/usr/share/doc.txt  [upstream-wins: upstream wins]",
            "/etc/motd  [local-wins-etc-var: local wins]");
    assertThat(upper.resolve("usr/share/doc.txt")).doesNotExist();
    assertThat(upper.resolve("etc/motd")).hasContent("local motd");
    assertThat(upper.resolve("usr/lib/new")).hasContent("new");
    // upstream changed the directory's mode, the local side did not: the upper copy follows
    assertThat(
            PosixFilePermissions.toString(Files.getPosixFilePermissions(upper.resolve("usr/lib"))))
        .isEqualTo("rwx------");
    assertThat(Files.readString(scratch.resolve("osfarm-scratch.properties")))
        .contains("base=" + onto, "ref=images/x");
    Path backup;
    try (var s = Files.list(scratch)) {
      backup =
          s.filter(p -> p.getFileName().toString().startsWith("rebase-backup-")).findFirst().get();
    }
    assertThat(backup.resolve("upper/usr/share/doc.txt")).hasContent("local doc");
    assertThat(Files.readAllLines(backup.resolve("journal"))).last().isEqualTo("done");

    // again onto the same snapshot: nothing to do
    assertThat(ok(osfarm(repo, "rebase", scratch.toString(), "--onto", onto)).out())
        .contains("no conflicts");
  }

  @Test
  void errorsAreClearAndNonZero() throws IOException {
    Path repo = dir.resolve("repo");
    CliTest.Result missing = CliTest.run("--repo", repo.toString(), "rebase", dir.toString());
    assertThat(missing.exit()).isNotZero();
    assertThat(missing.err()).contains("--onto");

    CliTest.Result notScratch =
        osfarm(repo, "rebase", dir.resolve("nope").toString(), "--onto", "images/x");
    assertThat(notScratch.exit()).isEqualTo(1);
    assertThat(notScratch.err()).contains("not a scratch directory");

    Path scratch = dir.resolve("scratch");
    Files.createDirectories(scratch.resolve("upper"));
    Files.writeString(scratch.resolve("osfarm-scratch.properties"), "base=" + "ab".repeat(32));
    CliTest.Result noBase = osfarm(repo, "rebase", scratch.toString(), "--onto", "images/x");
    assertThat(noBase.exit()).isEqualTo(1);
    assertThat(noBase.err()).contains("base snapshot", "is not in the repository");
  }
}
