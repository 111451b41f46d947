package org.osfarm.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import org.osfarm.core.RepositoryException;
import org.osfarm.core.SignerKey;
import org.osfarm.core.TrustedKeys;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "key",
    description = "Manage the repository's Ed25519 signing key and its trusted keys.",
    subcommands = {KeyCommand.Generate.class, KeyCommand.Show.class, KeyCommand.Trust.class})
final class KeyCommand {
  @ParentCommand OsfarmCommand top;

  @Command(
      name = "generate",
      description = {
        "Make the repository's signing key (PKCS#8, mode 0600, keys/signing.key or the",
        "'signing-key PATH' setting) and trust it here. From then on every snapshot this",
        "repository writes is signed. Prints the public key line to give to others."
      })
  static final class Generate implements Callable<Integer> {
    @ParentCommand KeyCommand parent;
    @Spec CommandSpec spec;

    @Option(
        names = "--name",
        paramLabel = "NAME",
        description = "Name in the public key line (default: USER@HOST).")
    String name;

    @Option(names = "--force", description = "Replace an existing signing key.")
    boolean force;

    @Override
    public Integer call() {
      try (Repository repo = parent.top.openRepository()) {
        SignerKey k = repo.keys().generate(name != null ? name : defaultName(), force);
        spec.commandLine()
            .getErr()
            .println("signing key written to " + repo.keys().signingKeyFile() + " (mode 0600)");
        spec.commandLine().getOut().println(k.line());
      }
      return 0;
    }

    private static String defaultName() {
      String user = System.getProperty("user.name", "osfarm");
      String host = System.getenv("HOSTNAME");
      if (host == null || host.isBlank()) {
        try {
          host = Files.readString(Path.of("/etc/hostname")).strip();
        } catch (IOException e) {
          host = "";
        }
      }
      return host.isBlank() ? user : user + "@" + host;
    }
  }

  @Command(name = "show", description = "Print the public key line of the signing key.")
  static final class Show implements Callable<Integer> {
    @ParentCommand KeyCommand parent;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      try (Repository repo = parent.top.openRepository()) {
        SignerKey k =
            repo.keys()
                .signingKey()
                .orElseThrow(
                    () ->
                        new RepositoryException(
                            "no signing key at "
                                + repo.keys().signingKeyFile()
                                + ": run 'osfarm key generate'"))
                .publicKey();
        spec.commandLine().getOut().println(k.line());
      }
      return 0;
    }
  }

  @Command(
      name = "trust",
      description = {
        "Trust a public key: a line 'ed25519 BASE64 name' (quoted) or a file of such lines.",
        "Keys are kept in keys/trusted of the repository."
      })
  static final class Trust implements Callable<Integer> {
    @ParentCommand KeyCommand parent;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FILE|LINE")
    String key;

    @Override
    public Integer call() {
      List<SignerKey> keys;
      if (key.strip().startsWith("ed25519 ")) {
        keys = TrustedKeys.parse(List.of(key), "key line").keys();
      } else {
        Path f = Path.of(key);
        if (!Files.isRegularFile(f)) {
          throw new RepositoryException(
              "'" + key + "' is neither a key line ('ed25519 BASE64 name') nor a file");
        }
        try {
          keys =
              TrustedKeys.parse(Files.readAllLines(f, StandardCharsets.UTF_8), f.toString()).keys();
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read " + f, e);
        }
        if (keys.isEmpty()) {
          throw new RepositoryException(f + " holds no key line ('ed25519 BASE64 name')");
        }
      }
      try (Repository repo = parent.top.openRepository()) {
        for (SignerKey k : keys) {
          boolean added = repo.keys().trust(k);
          spec.commandLine()
              .getErr()
              .println((added ? "trusted: " : "already trusted: ") + k.describe());
        }
      }
      return 0;
    }
  }
}
