// Experiment (preload with --require): turns off Nagle's algorithm on every TCP
// socket the proxy opens or accepts, without touching proxy/. Used to test
// whether the mesh's peer connections stall on Nagle + delayed ACK.
const net = require("node:net");
const emit = net.Server.prototype.emit;
net.Server.prototype.emit = function (event, socket, ...rest) {
  if (event === "connection" && socket && typeof socket.setNoDelay === "function") socket.setNoDelay(true);
  return emit.call(this, event, socket, ...rest);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  this.setNoDelay(true);
  return connect.apply(this, args);
};
