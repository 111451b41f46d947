package org.osfarm.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.core.SignatureException;
import org.osfarm.core.SignerKey;
import org.osfarm.core.TrustedKeys;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "verify",
    description = {
      "Check the signature of a snapshot against trusted keys and print who signed it.",
      "Exit 1 if it is unsigned or signed by no trusted key, 3 if it was altered."
    })
final class VerifyCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF", description = "Ref, snapshot id or id prefix.")
  String ref;

  @Option(
      names = "--trust",
      paramLabel = "FILE",
      description = "Trusted keys, one 'ed25519 BASE64 name' line each (default: keys/trusted).")
  Path trust;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository()) {
      Digest id = repo.resolve(ref);
      TrustedKeys keys = trust != null ? TrustedKeys.load(trust) : repo.keys().trusted();
      try {
        SignerKey k = repo.verifySignature(id, keys);
        spec.commandLine().getOut().println(id.hex() + " signed by " + k.describe());
        return 0;
      } catch (SignatureException e) {
        spec.commandLine().getErr().println("osfarm: " + e.getMessage());
        return e.reason() == SignatureException.Reason.BAD_SIGNATURE
            ? Main.EXIT_DAMAGE
            : Main.EXIT_ERROR;
      }
    }
  }
}
