package org.osfarm.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.osfarm.server.Settings;
import org.osfarm.server.TokenStore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "token",
    description = {
      "Manage the API tokens of 'osfarm serve'.",
      "",
      "Requests that change anything (build, tag, delete) send one as 'Authorization: Bearer "
          + "TOKEN'; the web UI asks for it at /login."
    },
    subcommands = {
      TokenCommand.Create.class,
      TokenCommand.ListTokens.class,
      TokenCommand.Revoke.class
    })
final class TokenCommand {
  @ParentCommand OsfarmCommand top;

  @Option(
      names = "--db",
      paramLabel = "FILE",
      description = "The service database (default: $OSFARM_SERVER_DB, else REPO/server.db).")
  Path db;

  TokenStore open() {
    Path file =
        db != null ? db : Settings.fromEnvironment(top.repoDir(), System.getenv()).database();
    return TokenStore.open(file);
  }

  @Command(name = "create", description = "Create a token NAME and print it (shown only once).")
  static final class Create implements Callable<Integer> {
    @ParentCommand TokenCommand parent;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "Who or what uses the token, e.g. ci or alice.")
    String name;

    @Override
    public Integer call() {
      try (TokenStore t = parent.open()) {
        String token = t.create(name);
        spec.commandLine().getErr().println("token '" + name + "' created; it is not shown again");
        spec.commandLine().getOut().println(token);
      }
      return 0;
    }
  }

  @Command(name = "list", description = "List token names and when they were made.")
  static final class ListTokens implements Callable<Integer> {
    @ParentCommand TokenCommand parent;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      try (TokenStore t = parent.open()) {
        for (TokenStore.TokenInfo i : t.list()) {
          spec.commandLine().getOut().println(i.name() + "\t" + i.created());
        }
      }
      return 0;
    }
  }

  @Command(name = "revoke", description = "Revoke the token NAME.")
  static final class Revoke implements Callable<Integer> {
    @ParentCommand TokenCommand parent;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    public Integer call() {
      try (TokenStore t = parent.open()) {
        if (!t.revoke(name)) {
          throw new IllegalArgumentException(
              "no token named '" + name + "' (see 'osfarm token list')");
        }
      }
      return 0;
    }
  }
}
