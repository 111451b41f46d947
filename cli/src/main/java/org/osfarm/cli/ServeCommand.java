package org.osfarm.cli;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.osfarm.core.Repository;
import org.osfarm.transfer.ImageProtocol;
import org.osfarm.transfer.ObjectProtocol;
import org.osfarm.transfer.TransferServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "serve",
    description = {
      "Serve the repository to other osfarm hosts over HTTP (pull, push), and with --images",
      "the image files of DIR for block-level 'osfarm fetch'. Runs until interrupted."
    })
final class ServeCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Option(names = "--listen", paramLabel = "HOST:PORT", description = "Default: 127.0.0.1:8080.")
  String listen = "127.0.0.1:8080";

  @Option(names = "--images", paramLabel = "DIR", description = "Offer the files in DIR.")
  Path images;

  @Option(names = "--allow-push", description = "Accept objects and ref updates from peers.")
  boolean allowPush;

  @Option(
      names = "--block-size",
      paramLabel = "N",
      description = "Index the images for this block size at start (default 4096).")
  int blockSize = 4096;

  @Override
  public Integer call() throws Exception {
    int colon = listen.lastIndexOf(':');
    if (colon < 0) {
      throw new IllegalArgumentException("--listen wants HOST:PORT, not " + listen);
    }
    InetSocketAddress addr =
        new InetSocketAddress(
            listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)));
    if (images != null && !Files.isDirectory(images)) {
      throw new IllegalArgumentException("--images " + images + " is not a directory");
    }
    try (Repository repo = top.openRepository()) {
      ImageProtocol ip = images == null ? null : new ImageProtocol(images);
      if (ip != null) {
        ip.prepare(blockSize);
      }
      try (TransferServer s = new TransferServer(addr, new ObjectProtocol(repo, allowPush), ip)) {
        spec.commandLine()
            .getErr()
            .printf(
                "serving %s%s on http://%s:%d/v1/ (push %s)%n",
                repo.directory(),
                images == null ? "" : " and images in " + images,
                s.address().getHostString(),
                s.address().getPort(),
                allowPush ? "allowed" : "refused");
        spec.commandLine().getErr().flush();
        CountDownLatch forever = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(forever::countDown));
        forever.await();
      }
    }
    return 0;
  }
}
