package org.osfarm.transfer;

import java.io.IOException;

/**
 * A framework-independent HTTP handler: the object protocol and the image protocol implement it,
 * {@link TransferServer} mounts them on the JDK's HTTP server, and a web framework can mount them
 * the same way.
 *
 * <p>Errors: {@link org.osfarm.core.NotFoundException} maps to 404, {@link TransferException} and
 * {@link IllegalArgumentException} to 400, anything else to 500.
 */
public interface ProtocolHandler {
  ProtocolResponse handle(ProtocolRequest request) throws IOException;
}
