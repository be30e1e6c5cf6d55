# The tutorial's turn-taking TCP client (../shared/seed/, "TCP:双向通信Socket之客户端",
# 实现TCP模拟QQ(单线程)), copied as written.  Changes, only what is needed to run it
# here: the server address comes from argv (host, port) instead of the hard-coded
# 169.254.146.162:8089 (run it with python3 -u: its prints go to a file).
import struct
import sys
from socket import *
# 创建套接字
client_socket = socket(AF_INET, SOCK_STREAM)
# 绑定端口
HOST = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
client_socket.connect((HOST, int(sys.argv[2]) if len(sys.argv) > 2 else 8089))

while True:
    # 客户端发送消息
    msg = input('>>>>')
    client_socket.send(msg.encode('utf-8'))
    if msg == 'bye':
        break
    # 客户端接收消息
    recv_data = client_socket.recv(1024)
    print('服务器端说:', recv_data.decode('utf-8'))
    if recv_data.decode('utf-8') == 'bye':
        break
client_socket.close()
