package org.osfarm.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.build.BuildException;
import org.osfarm.build.BuildListener;
import org.osfarm.build.BuildPlan;
import org.osfarm.build.BuildResult;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.ImageBuilder;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputRequest;
import org.osfarm.build.RequestCache;
import org.osfarm.build.SpecParser;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "build",
    description = {
      "Build an image from a spec or libfsimage-style flags, reusing cached layers.",
      "",
      "Build an image from a spec (XML, YAML or JSON) or from libfsimage-style flags, reusing "
          + "every cached layer. Prints the image's snapshot id as the last line of stdout; progress "
          + "and the build log go to stderr. Example: osfarm build --class debian-bookworm -g core -g"
          + " base -p python3 -o img.tar.gz"
    })
final class BuildCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "SPEC", description = "Spec file.")
  Path specFile;

  @Option(names = "--class", paramLabel = "CLASS", description = "Distro class (osfarm classes).")
  String className;

  @Option(
      names = {"-a", "--arch"},
      paramLabel = "ARCH",
      description = "amd64, i386...")
  String arch;

  @Option(
      names = {"-g", "--group"},
      paramLabel = "GROUP",
      description = "Package group.")
  List<String> groups = new ArrayList<>();

  @Option(
      names = {"-p", "--package"},
      paramLabel = "PKG",
      description = "Extra package.")
  List<String> packages = new ArrayList<>();

  @Option(
      names = {"-w", "--root-password"},
      paramLabel = "PW",
      description = "Root password.")
  String rootPassword;

  @Option(names = "--hostname", paramLabel = "NAME")
  String hostname;

  @Option(names = "--kernel", description = "Install the class's kernel (to boot the image).")
  boolean kernel;

  @Option(names = "--name", paramLabel = "NAME", description = "Image name (default: the spec's).")
  String name;

  @Option(
      names = "--ref",
      paramLabel = "NAME",
      description = "Ref to point at the image (default: images/NAME if the image has a name).")
  String ref;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "OUT",
      description = "Output file or dir.")
  List<Path> outputs = new ArrayList<>();

  @Option(
      names = "--format",
      paramLabel = "F",
      description =
          "Format of the matching -o: dir, tar, tar.gz, tar.zst, raw (ext4), qcow2, oci"
              + " (default: from the name).")
  List<String> formats = new ArrayList<>();

  @Option(names = "--plan", description = "Print the layers, keys and cache state; build nothing.")
  boolean plan;

  @Option(names = "--explain", description = "With --plan: why each missing layer misses.")
  boolean explain;

  @Option(names = "--refresh", description = "Recheck the mirror state now, ignoring its TTL.")
  boolean refresh;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description = "Build cache (default: $OSFARM_CACHE, else ~/.cache/osfarm/build).")
  Path cacheDir;

  @Option(
      names = {"-v", "--verbose"},
      description = "Print the backend's log on stderr.")
  boolean verbose;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    try {
      return run(err);
    } catch (BuildException e) {
      err.println("osfarm: " + e.getMessage());
      return 1;
    }
  }

  private int run(PrintWriter err) throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Integer answered = answerFromCache(out, err);
    if (answered != null) {
      return answered;
    }
    return buildOrFind(out, err);
  }

  /** The outputs asked for. */
  private List<OutputRequest> outputRequests() {
    List<OutputRequest> outs = new ArrayList<>();
    for (int i = 0; i < outputs.size(); i++) {
      outs.add(OutputRequest.of(outputs.get(i), i < formats.size() ? formats.get(i) : null));
    }
    return outs;
  }

  private Path cache() {
    return cacheDir != null ? cacheDir : ImageBuilder.defaultCacheDir(System.getenv());
  }

  private RequestCache.Request request() {
    return new RequestCache.Request(
        top.repoDir(), specFile, flags(ImageSpec.builder()), ref, outputRequests());
  }

  private BuildListener listener(PrintWriter err) {
    return new BuildListener() {
      @Override
      public void step(String message) {
        err.println(message);
        err.flush();
      }

      @Override
      public void log(String line) {
        if (verbose) {
          err.println("  " + line);
          err.flush();
        }
      }
    };
  }

  /**
   * Answers an identical request answered before from the request cache, without planning or
   * opening the object store (the classes, Jackson, the HTTP client and the pack indexes stay
   * unloaded); also run by {@link FastBuild} before picocli is loaded.
   *
   * @return the exit code, or null on a miss
   */
  Integer answerFromCache(PrintWriter out, PrintWriter err) {
    if (plan || refresh) {
      return null;
    }
    RequestCache.Request req;
    try {
      req = request();
    } catch (RuntimeException e) {
      return null; // a bad request: the full path reports it
    }
    RequestCache.Hit hit;
    try {
      hit = new RequestCache(cache()).answer(req, listener(err)).orElse(null);
    } catch (BuildException e) {
      err.println("osfarm: " + e.getMessage());
      return 1;
    }
    if (hit == null) {
      return null;
    }
    err.println(summary(0, hit.layersReused(), hit.outputsFromCache(), hit.seconds()));
    out.println(hit.snapshot().hex());
    out.flush();
    err.flush();
    return 0;
  }

  /** The summary line; %.1f without java.util.Formatter (its locale data costs start-up). */
  static String summary(int built, int reused, int fromCache, double seconds) {
    long tenths = Math.round(seconds * 10);
    return "built "
        + built
        + " layer(s), reused "
        + reused
        + ", "
        + fromCache
        + " output(s) from cache, "
        + (tenths / 10)
        + "."
        + (tenths % 10)
        + " s";
  }

  private int buildOrFind(PrintWriter out, PrintWriter err) throws Exception {
    List<OutputRequest> outs = new ArrayList<>();
    for (int i = 0; i < outputs.size(); i++) {
      outs.add(OutputRequest.of(outputs.get(i), i < formats.size() ? formats.get(i) : null));
    }
    Path cache = cache();
    BuildListener l = listener(err);
    RequestCache requests = new RequestCache(cache);
    RequestCache.Request req = request();
    ImageSpec s = spec();
    try (Repository repo = top.openRepository()) {
      // the command line answers before the next request's spare is copied (OutputDelivery)
      ImageBuilder b = new ImageBuilder(repo, ClassRegistry.builtIn(), cache, true);
      if (plan) {
        BuildPlan p = b.plan(s, explain, refresh);
        out.print(p.render());
        out.flush();
        return 0;
      }
      String r = ref != null ? ref : s.name() != null ? "images/" + s.name() : null;
      BuildResult res = b.build(s, r, outs, l);
      requests.record(req, repo, res, r);
      err.println(
          summary(res.layersBuilt(), res.layersReused(), res.outputsFromCache(), res.seconds()));
      out.println(res.snapshot().hex());
    }
    return 0;
  }

  /** The flags' part of the spec. */
  private ImageSpec flags(ImageSpec.Builder b) {
    if (name != null) {
      b.name(name);
    }
    if (className != null) {
      b.className(className);
    }
    if (arch != null) {
      b.arch(arch);
    }
    b.groupsList(groups).packagesList(packages);
    if (rootPassword != null) {
      b.rootPassword(rootPassword);
    }
    if (hostname != null) {
      b.hostname(hostname);
    }
    if (kernel) {
      b.kernel(true);
    }
    return b.build();
  }

  private ImageSpec spec() {
    ImageSpec base = specFile != null ? SpecParser.parse(specFile) : null;
    ImageSpec.Builder b = ImageSpec.builder();
    if (base != null) {
      b.name(base.name()).className(base.className()).arch(base.arch());
      b.groupsList(base.groups()).packagesList(base.packages());
      base.repositories().forEach(b::repository);
      b.rootPassword(base.rootPassword()).hostname(base.hostname()).kernel(base.kernel());
      base.users().forEach(b::user);
      base.files().forEach(f -> b.file(f.path(), f.mode(), f.content()));
      base.scripts().forEach(x -> b.script(x.name(), x.content()));
      base.services().forEach(b::service);
      base.firstBoot().forEach(x -> b.firstBoot(x.name(), x.content()));
    }
    return flags(b);
  }
}
