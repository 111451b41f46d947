package org.osfarm.cli;

import java.nio.file.Path;
import java.util.Map;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The top-level command: global options and the list of subcommands. */
@Command(
    name = "osfarm",
    mixinStandardHelpOptions = true,
    scope = ScopeType.INHERIT, // --help and --version on every subcommand too
    version = "osfarm 0.1.0",
    // subcommands: SUBCOMMANDS below, added by Main (only the one the command line names)
    description = "A farm for operating-system images: publish, store, query and ship them.")
public final class OsfarmCommand {
  /**
   * The subcommands. Main registers only the one a command line names (and all of them for help or
   * a name it does not know): picocli's reflection over every command and option cost most of the
   * start-up time.
   */
  static final Class<?>[] SUBCOMMANDS = {
    InitCommand.class,
    PublishCommand.class,
    ExportCommand.class,
    RefsCommand.class,
    LogCommand.class,
    TagCommand.class,
    RefCommand.class,
    LsCommand.class,
    CatCommand.class,
    ManifestCommand.class,
    DiffCommand.class,
    StatsCommand.class,
    FsckCommand.class,
    GcCommand.class,
    TokenCommand.class,
    FindCommand.class,
    PackagesCommand.class,
    ProvenanceCommand.class,
    DerivedCommand.class,
    LabelCommand.class,
    OverlayCommand.class,
    InstallCommand.class,
    CatalogCommand.class,
    ServeCommand.class,
    PullCommand.class,
    PushCommand.class,
    FetchCommand.class,
    CommonalityCommand.class,
    BuildCommand.class,
    ClassesCommand.class,
    GroupsCommand.class,
    KeyCommand.class,
    VerifyCommand.class,
    PromoteCommand.class,
    ChannelsCommand.class,
    RebaseCommand.class,
    MountCommand.class,
    UmountCommand.class,
    BootimageCommand.class,
  };

  @Option(
      names = "--repo",
      scope = ScopeType.INHERIT,
      paramLabel = "DIR",
      description =
          "Repository directory (default: $OSFARM_REPO, else $XDG_DATA_HOME/osfarm/repo, else"
              + " ~/.local/share/osfarm/repo). Created on first use.")
  Path repo;

  /** The repository directory these options name. */
  Path repoDir() {
    return repoDir(repo, System.getenv());
  }

  static Path repoDir(Path explicit, Map<String, String> env) {
    if (explicit != null) {
      return explicit;
    }
    String e = env.get("OSFARM_REPO");
    if (e != null && !e.isBlank()) {
      return Path.of(e);
    }
    String xdg = env.get("XDG_DATA_HOME");
    if (xdg != null && !xdg.isBlank()) {
      return Path.of(xdg, "osfarm", "repo");
    }
    return Path.of(System.getProperty("user.home"), ".local", "share", "osfarm", "repo");
  }

  /** Opens the repository, creating it on first use. */
  Repository openRepository() {
    return Repository.init(repoDir());
  }
}
