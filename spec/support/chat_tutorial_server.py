# The tutorial's multi-threaded TCP chat server (../shared/seed/, "TCP多线程聊天服务器端"),
# copied as written.  Changes, only what is needed to run it here:
#  - the port comes from argv[1] (default 8888), and SO_REUSEADDR is set;
#  - print a line once listening, so a test knows when to connect.
# Its flaws are kept on purpose for comparison: one thread per client, no
# lock on `sockets`, and an abrupt disconnect kills that client's thread (or
# spins on b'' forever).
import sys
from socket import *
from threading import Thread
sockets = []


def main():
    # 创建server_socket套接字对象
    server_socket = socket(AF_INET, SOCK_STREAM)
    server_socket.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    # 绑定端口
    server_socket.bind(('', int(sys.argv[1]) if len(sys.argv) > 1 else 8888))
    # 监听
    server_socket.listen()
    print('listening', flush=True)
    # 接收客户端请求
    while True:
        client_socket, client_info = server_socket.accept()
        # 保存在线客户端的列表
        sockets.append(client_socket)
        # 开启线程处理当前客户端的请求
        t = Thread(target=read_msg, args=(client_socket,))
        t.start()


def read_msg(client_socket):
    # 读取客户端发送的消息
    while True:
        recv_data = client_socket.recv(1024)
        # 如果接收到的消息结尾是bye则在线客户端列表移除该客户端
        if recv_data.decode('utf-8').endswith('bye'):
            sockets.remove(client_socket)
            client_socket.close()
            break
        # 将消息发送给所有在线的客户端
        # 遍历所有在线客户端列表
        if len(recv_data) > 0:
            for item in sockets:
                item.send(recv_data)


if __name__ == '__main__':
    main()
