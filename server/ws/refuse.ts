/** Answers a websocket upgrade request with a plain HTTP status and closes the socket. */
import type { Duplex } from 'node:stream';

export function refuse(socket: Duplex, status: number, text: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
