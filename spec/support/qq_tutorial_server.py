# The tutorial's turn-taking TCP server (../shared/seed/, "TCP:双向通信Socket之服务器端",
# 实现TCP模拟QQ(单线程)), copied as written.  Changes, only what is needed to run it here:
#  - the port comes from argv[1] (default 8089), and SO_REUSEADDR is set;
#  - print a line once listening, so a test knows when to connect
#    (run it with python3 -u: its prints go to a file).
import struct
import sys
from socket import *
# 创建套接字
s = socket(AF_INET, SOCK_STREAM)
s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
# 绑定端口
s.bind(('', int(sys.argv[1]) if len(sys.argv) > 1 else 8089))  # 绑定的是本机,端口为8089
s.listen()
print('listening')
# 接收客户端的连接
client_socket, client_info = s.accept()
# 接收
while True:
    # 服务器端接收客户端消息
    data = client_socket.recv(1024)  # 接收数据,类型为元组
    print('客户端说:', data.decode('utf-8'))
    if data.decode('utf-8') == 'bye':
        break
    msg = input('>>>>')
    client_socket.send(msg.encode('utf-8'))
    if msg == 'bye':
        break
s.close()
client_socket.close()
