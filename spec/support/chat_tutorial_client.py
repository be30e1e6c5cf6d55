# The tutorial's two-thread TCP chat client (../shared/seed/, "TCP多线程聊天客户端"),
# copied as written.  Changes, only what is needed to run it here: the server
# address comes from argv (host, port) instead of the hard-coded
# 169.254.146.162:8888, and prints are flushed (stdout is a file in tests).
import sys
from socket import *
from threading import Thread
flag = True


def read_msg(client_socket):
    while flag:
        recv_data = client_socket.recv(1024)
        print('收到:', recv_data.decode('utf-8'), flush=True)


def write_msg(client_socket):
    global flag
    while flag:
        msg = input('>')
        msg = user_name+'说'+msg
        client_socket.send(msg.encode('utf-8'))
        # 如果输入bye则下线
        if msg.endswith('bye'):
            flag = False
            break


# 创建客户端的套接字对象
client_socket = socket(AF_INET, SOCK_STREAM)
# 调用connect连接服务器
client_socket.connect((sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1',
                       int(sys.argv[2]) if len(sys.argv) > 2 else 8888))
user_name = input('请输入用户名:')
# 开启一个线程处理客户端的读取消息
t1 = Thread(target=read_msg, args=(client_socket,))
t1.start()
# 开启一个线程处理客户端的发送消息
t2 = Thread(target=write_msg, args=(client_socket,))
t2.start()

t1.join()
t2.join()

client_socket.close()
