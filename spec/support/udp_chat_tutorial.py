# The tutorial's two-thread UDP chat (../shared/seed/, "UDP实现多线程聊天"), copied as
# written.  Changes, only what is needed to run it here: the local port comes from
# argv[1] (default 8989) and the peer from argv[2], argv[3] instead of the hard-coded
# 169.254.146.162:8080; prints are flushed (run it with python3 -u).  Like the
# tutorial's, it never exits by itself: a test stops it.
import sys
from socket import *
from threading import Thread, Lock
udp_socket = socket(AF_INET, SOCK_DGRAM)
# 绑定端口
udp_socket.bind(('', int(sys.argv[1]) if len(sys.argv) > 1 else 8989))
peer = (sys.argv[2] if len(sys.argv) > 2 else '127.0.0.1',
        int(sys.argv[3]) if len(sys.argv) > 3 else 8080)
lock1 = Lock()
lock2 = Lock()
lock2.acquire()


# 不停接收
class recv_data(Thread):  # 通过继承Thread类的方式创建线程
    def run(self):
        while True:
            if lock2.acquire():  # 加入锁,利用之前学到的线程同步控制两个线程执行
                recv_msg = udp_socket.recvfrom(1024)
                print('>>{}:{}'.format(recv_msg[1], recv_msg[0].decode('gb2312')))
                lock1.release()


# 不停发送
class send_data(Thread):
    def run(self):
        while True:
            if lock1.acquire():
                data = input('<<: ')
                addr = peer
                udp_socket.sendto(data.encode('gb2312'), addr)
                lock2.release()


if __name__ == "__main__":
    t2 = send_data()
    t1 = recv_data()

    t1.start()
    t2.start()
