package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BuildCommandTest {
  @TempDir Path tmp;

  record Result(int exit, String out, String err) {}

  static Result run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    return new Result(exit, out.toString(), err.toString());
  }

  @Test
  void classesListsTheBuiltInClasses() {
    Result r = run("classes");
    assertThat(r.exit()).isZero();
    assertThat(r.out())
        .contains("debian-bookworm")
        .contains("debian-trixie")
        .contains("debian-bullseye")
        .contains("ubuntu-noble")
        .contains("http://deb.debian.org/debian")
        .contains("amd64,i386");
  }

  @Test
  void groupsListsTheGroupsOfAClass() {
    Result r = run("groups", "debian-bookworm");
    assertThat(r.exit()).isZero();
    assertThat(r.out()).containsPattern("(?m)^base\\s+\\(layer\\) .*systemd-sysv");
    assertThat(r.out()).containsPattern("(?m)^ssh-server\\s+openssh-server");
    Result bad = run("groups", "debian-potato");
    assertThat(bad.exit()).isEqualTo(1);
    assertThat(bad.err()).contains("unknown class 'debian-potato'");
  }

  @Test
  void badSpecsFailWithAMessageNamingTheProblem() throws Exception {
    Path repo = tmp.resolve("repo");
    Path xml = tmp.resolve("bad.xml");
    Files.writeString(xml, "<image class=\"debian-bookworm\">\n  <package>vim</pack>\n</image>\n");
    Result r =
        run(
            "--repo",
            repo.toString(),
            "build",
            "--cache-dir",
            tmp.resolve("c").toString(),
            xml.toString());
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("bad.xml: malformed XML at line 2");
    Result c =
        run(
            "--repo",
            repo.toString(),
            "build",
            "--cache-dir",
            tmp.resolve("c").toString(),
            "--class",
            "debian-potato",
            "-p",
            "vim");
    assertThat(c.exit()).isEqualTo(1);
    assertThat(c.err()).contains("unknown class 'debian-potato'");
  }
}
