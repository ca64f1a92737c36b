#pragma once
// SDP bodies shared by the media unit tests, written as the peers send them.
#include <string>
#include <string_view>

namespace edgepair::media::test {

// Turns "\n" into "\r\n" so bodies can be written one line per source line.
inline std::string crlf(std::string_view lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// A Jabber (Cisco CSF) offer: audio + video + BFCP, two crypto suites per RTP stream, ICE, explicit rtcp.
inline constexpr std::string_view kJabberOffer = R"(v=0
o=Cisco-SIPUA 23517 0 IN IP4 192.168.1.50
s=SIP Call
b=AS:4000
t=0 0
m=audio 24580 RTP/SAVP 114 9 104 105 0 8 18 111 101
c=IN IP4 192.168.1.50
b=TIAS:64000
a=rtpmap:114 opus/48000/2
a=fmtp:114 maxplaybackrate=16000;sprop-maxcapturerate=16000;maxaveragebitrate=64000;stereo=0;usedtx=0
a=rtpmap:9 G722/8000
a=rtpmap:104 G7221/16000
a=fmtp:104 bitrate=32000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:111 x-ulpfecuc/8000
a=fmtp:111 max_esel=1400;m=8;max_n=32;FEC_ORDER=FEC_SRTP
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=extmap:14/sendrecv http://protocols.cisco.com/timestamp#100us
a=crypto:0 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^31
a=rtcp:24581
a=rtcp-mux
a=ice-ufrag:Jd9z
a=ice-pwd:P8t8IFE6tVZ6bDz4mr7jCXnw
a=candidate:1 1 UDP 2130706431 192.168.1.50 24580 typ host
a=candidate:1 2 UDP 2130706430 192.168.1.50 24581 typ host
a=candidate:2 1 UDP 1694498815 203.0.113.7 50012 typ srflx raddr 192.168.1.50 rport 24580
a=sendrecv
m=video 24582 RTP/SAVP 126 97
c=IN IP4 192.168.1.50
b=TIAS:4000000
a=rtpmap:126 H264/90000
a=fmtp:126 profile-level-id=42801F;packetization-mode=1;level-asymmetry-allowed=1
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F;packetization-mode=0
a=rtcp-fb:* nack pli
a=rtcp-fb:* ccm fir
a=crypto:0 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31
a=rtcp:24583
a=content:main
a=label:11
a=sendrecv
m=application 5070 UDP/BFCP *
c=IN IP4 192.168.1.50
a=floorctrl:c-s
a=confid:1
a=userid:2
a=floorid:2 mstrm:12
a=setup:actpass
a=connection:new
)";

// What sipp's uac scenario and a Kamailio-fronted softphone send: plain RTP, session-level c=.
inline constexpr std::string_view kSippOffer = R"(v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
a=ptime:20
)";

} // namespace edgepair::media::test
