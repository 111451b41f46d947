package org.osfarm.transfer;

/**
 * The peer sent data that does not match what it claimed (a hash mismatch, an object nobody asked
 * for, a truncated stream): the peer is corrupted or lying. The bad data was discarded.
 */
public class PeerDataException extends TransferException {
  public PeerDataException(String message) {
    super(message);
  }
}
