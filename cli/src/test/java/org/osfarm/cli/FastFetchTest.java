package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The fetch fast lane's parser gives the same fetch as picocli for every command line it accepts,
 * and declines the others (picocli then parses them as always).
 */
class FastFetchTest {
  static FetchCommand picocli(String... args) {
    CommandLine cl = new CommandLine(new OsfarmCommand());
    cl.addSubcommand(FetchCommand.class);
    CommandLine.ParseResult pr = cl.parseArgs(args);
    return (FetchCommand) pr.subcommand().commandSpec().userObject();
  }

  static final List<List<String>> ACCEPTED =
      List.of(
          List.of("fetch", "http://h:8080/a.img", "-o", "a.img"),
          List.of("fetch", "-o", "out/a.img", "http://h:8080/v1/images/a.img", "--seed", "b.img"),
          List.of(
              "--repo",
              "/r",
              "fetch",
              "http://h/a.img",
              "--output",
              "a.img",
              "--seed",
              "b.img",
              "--seed",
              "/var/lib/images",
              "--block-size",
              "512",
              "--seed-index",
              "/idx",
              "--expect",
              "00ff",
              "--link-rate",
              "125",
              "--disk-rate",
              "1027.5"));

  @Test
  void acceptedCommandLinesGiveWhatPicocliGives() {
    for (List<String> line : ACCEPTED) {
      String[] args = line.toArray(String[]::new);
      FetchCommand fast = FastFetch.parse(args);
      assertThat(fast).as(String.join(" ", line)).isNotNull();
      FetchCommand slow = picocli(args);
      assertThat(fast.url).as(String.join(" ", line)).isEqualTo(slow.url);
      assertThat(fast.output).isEqualTo(slow.output);
      assertThat(fast.seeds).isEqualTo(slow.seeds);
      assertThat(fast.blockSize).isEqualTo(slow.blockSize);
      assertThat(fast.seedIndex).isEqualTo(slow.seedIndex);
      assertThat(fast.expect).isEqualTo(slow.expect);
      assertThat(fast.linkRate).isEqualTo(slow.linkRate);
      assertThat(fast.diskRate).isEqualTo(slow.diskRate);
    }
  }

  @Test
  void otherCommandLinesAreLeftToPicocli() {
    for (String[] args :
        List.of(
            new String[] {"fetch"},
            new String[] {"fetch", "--help"},
            new String[] {"fetch", "http://h/a.img"},
            new String[] {"fetch", "http://h/a.img", "-o"},
            new String[] {"fetch", "http://h/a.img", "-o", "-x"},
            new String[] {"fetch", "http://h/a.img", "-o=a"},
            new String[] {"fetch", "http://h/a.img", "-o", "a", "--output", "b"},
            new String[] {"fetch", "http://h/a.img", "-o", "a", "--block-size", "4k"},
            new String[] {"fetch", "http://h/a.img", "-o", "a", "--link-rate", "fast"},
            new String[] {"fetch", "http://h/a.img", "-o", "a", "--nope", "x"},
            new String[] {"fetch", "http://h/a.img", "http://h/b.img", "-o", "a"},
            new String[] {"fetch", "http://h/a b.img", "-o", "a"},
            new String[] {"fetch", "@args.txt"},
            new String[] {"fetch", "--", "http://h/a.img"},
            new String[] {"fetch", "http://h/a.img", "-o", "a", "--repo", "/r"},
            new String[] {"--repo", "/r", "--repo", "/s", "fetch", "http://h/a.img", "-o", "a"},
            new String[] {"-V", "fetch"},
            new String[] {"pull", "http://h", "x"})) {
      assertThat(FastFetch.parse(args)).as(String.join(" ", args)).isNull();
    }
  }
}
