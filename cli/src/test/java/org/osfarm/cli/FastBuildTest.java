package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The fast lane's parser gives the same request as picocli for every command line it accepts, and
 * declines the others (picocli then parses them as always).
 */
class FastBuildTest {
  static BuildCommand picocli(String... args) {
    CommandLine cl = new CommandLine(new OsfarmCommand());
    cl.addSubcommand(BuildCommand.class);
    CommandLine.ParseResult pr = cl.parseArgs(args);
    return (BuildCommand) pr.subcommand().commandSpec().userObject();
  }

  static final List<List<String>> ACCEPTED =
      List.of(
          List.of("build", "--class", "debian-bookworm", "-o", "x.tar"),
          List.of(
              "--repo",
              "/r",
              "build",
              "--class",
              "debian-bookworm",
              "-g",
              "core",
              "-g",
              "base",
              "-p",
              "openssh-server",
              "-p",
              "curl",
              "-o",
              "out/a.tar",
              "--output",
              "b.img",
              "--format",
              "tar.zst"),
          List.of(
              "build",
              "spec.yaml",
              "--repo",
              "/elsewhere",
              "--name",
              "web",
              "--ref",
              "images/w",
              "-a",
              "i386",
              "--hostname",
              "h1",
              "-w",
              "secret",
              "--kernel",
              "-v",
              "--cache-dir",
              "/c",
              "--group",
              "ssh-server",
              "--package",
              "vim"),
          List.of("build", "--root-password", "pw", "--verbose", "--class", "ubuntu-noble"));

  @Test
  void acceptedCommandLinesGiveWhatPicocliGives() {
    for (List<String> line : ACCEPTED) {
      String[] args = line.toArray(String[]::new);
      BuildCommand fast = FastBuild.parse(args);
      assertThat(fast).as(String.join(" ", line)).isNotNull();
      BuildCommand slow = picocli(args);
      assertThat(fast.top.repoDir()).as(String.join(" ", line)).isEqualTo(slow.top.repoDir());
      assertThat(fast.specFile).isEqualTo(slow.specFile);
      assertThat(fast.className).isEqualTo(slow.className);
      assertThat(fast.arch).isEqualTo(slow.arch);
      assertThat(fast.groups).isEqualTo(slow.groups);
      assertThat(fast.packages).isEqualTo(slow.packages);
      assertThat(fast.rootPassword).isEqualTo(slow.rootPassword);
      assertThat(fast.hostname).isEqualTo(slow.hostname);
      assertThat(fast.kernel).isEqualTo(slow.kernel);
      assertThat(fast.name).isEqualTo(slow.name);
      assertThat(fast.ref).isEqualTo(slow.ref);
      assertThat(fast.outputs).isEqualTo(slow.outputs);
      assertThat(fast.formats).isEqualTo(slow.formats);
      assertThat(fast.cacheDir).isEqualTo(slow.cacheDir);
      assertThat(fast.verbose).isEqualTo(slow.verbose);
      assertThat(fast.plan).isFalse();
    }
  }

  @Test
  void otherCommandLinesAreLeftToPicocli() {
    for (String[] args :
        List.of(
            new String[] {"classes"},
            new String[] {"--help"},
            new String[] {"build", "--help"},
            new String[] {"build", "--plan", "--class", "debian-bookworm"},
            new String[] {"build", "--class=debian-bookworm"},
            new String[] {"build", "-pcurl"},
            new String[] {"build", "--class", "a", "--class", "b"},
            new String[] {"build", "--kernel", "--kernel"},
            new String[] {"build", "-p"},
            new String[] {"build", "-p", "-v"},
            new String[] {"build", "@args.txt"},
            new String[] {"build", "a.yaml", "b.yaml"},
            new String[] {"build", "--", "a.yaml"},
            new String[] {"--repo", "/r", "--repo", "/s", "build"},
            new String[] {"--repo", "/r", "build", "--repo", "/s"},
            new String[] {"-V", "build"},
            new String[] {"refs"})) {
      assertThat(FastBuild.parse(args)).as(String.join(" ", args)).isNull();
    }
  }

  @Test
  void mainRegistersOnlyTheNamedSubcommand() {
    assertThat(Main.subcommandName(new String[] {"--repo", "build", "refs"})).isEqualTo("refs");
    assertThat(Main.subcommandName(new String[] {"--repo=/r", "build", "-o", "x"}))
        .isEqualTo("build");
    assertThat(Main.subcommandName(new String[] {"--help"})).isNull();
    assertThat(Main.subcommandName(new String[] {"nosuch"})).isNull();
    assertThat(Main.subcommandName(new String[] {})).isNull();
  }
}
